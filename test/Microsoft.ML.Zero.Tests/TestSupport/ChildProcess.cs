using System.Diagnostics;

namespace Microsoft.ML.Zero.Tests.TestSupport;

/// <summary>Starts a child process, waits for it within a timeout and keeps what it printed.</summary>
internal static class ChildProcess
{
    /// <summary>The dotnet host running these tests (DOTNET_HOST_PATH, which `dotnet test` sets), else dotnet from PATH.</summary>
    public static string DotnetHost => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } path ? path : "dotnet";

    /// <summary>The test assembly, which doubles as a console app (Program.cs): the child that scores a saved model or runs an MPI rank.</summary>
    public static string TestAssembly => typeof(Program).Assembly.Location;

    /// <summary>
    /// Runs <paramref name="fileName"/> with <paramref name="arguments"/> (each passed as one argument, no quoting needed) and
    /// returns once it has exited. A child still running after <paramref name="timeout"/> is killed with its own children,
    /// and the test fails with the command and everything it printed.
    /// </summary>
    public static ChildProcessResult Run(string fileName, IEnumerable<string> arguments, TimeSpan timeout, string? workingDirectory = null,
        IEnumerable<KeyValuePair<string, string>>? environment = null)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = workingDirectory ?? "",
        };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        foreach (var (name, value) in environment ?? [])
            start.Environment[name] = value;
        string command = string.Join(' ', new[] { fileName }.Concat(start.ArgumentList).Select(Quote));

        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new AssertFailedException($"{command} did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(TimeSpan.FromSeconds(30));
            Assert.Fail($"{command} did not finish in {timeout} and was killed.\n{Printed(Read(stdout), Read(stderr))}");
        }
        // The exit code is known; waiting again without a timeout lets the output readers reach the end.
        process.WaitForExit();
        return new ChildProcessResult(command, process.ExitCode, Read(stdout), Read(stderr), watch.Elapsed);
    }

    /// <summary>Runs the test assembly in a fresh process (`dotnet Microsoft.ML.Zero.Tests.dll arguments...`).</summary>
    public static ChildProcessResult RunTestAssembly(TimeSpan timeout, params string[] arguments) =>
        Run(DotnetHost, [TestAssembly, .. arguments], timeout);

    internal static string Printed(string stdout, string stderr) => $"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}";

    // A killed child's grandchildren may still hold its pipes open: wait a little, then report what arrived.
    private static string Read(Task<string> output) => output.Wait(TimeSpan.FromSeconds(10)) ? output.Result : "(the output did not close)";

    private static string Quote(string argument) => argument.Length > 0 && !argument.Any(c => char.IsWhiteSpace(c) || c == '"') ? argument : $"\"{argument}\"";
}

/// <summary>What a finished child process did: its exit code, output and running time.</summary>
internal sealed record ChildProcessResult(string Command, int ExitCode, string StandardOutput, string StandardError, TimeSpan Elapsed)
{
    /// <summary>Standard output followed by standard error, for assertions on what the child printed.</summary>
    public string Output => StandardOutput + StandardError;

    /// <summary>The command, how it ended and everything it printed: the message of a failed assertion about it.</summary>
    public string Describe() => $"{Command} exited with code {ExitCode} after {Elapsed.TotalSeconds:F1} s.\n{ChildProcess.Printed(StandardOutput, StandardError)}";

    /// <summary>Fails the test, with <see cref="Describe"/>, unless the child exited with code 0.</summary>
    public ChildProcessResult AssertSucceeded()
    {
        Assert.AreEqual(0, ExitCode, Describe());
        return this;
    }

    /// <summary>Fails the test, with <see cref="Describe"/>, if the child exited with code 0.</summary>
    public ChildProcessResult AssertFailed()
    {
        Assert.AreNotEqual(0, ExitCode, Describe());
        return this;
    }
}
