using System.Diagnostics;
using System.Text.Json;

namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>
/// Runs one measurement in a fresh copy of this program, so each gets its own peak memory and warm-up, and reads the
/// JSON result it prints as its last line.
/// </summary>
internal static class ChildProcess
{
    public const string Flag = "--child";

    public static T Run<T>(params string[] arguments) => Start<T>(null, arguments);

    /// <summary>Runs the measurement as an OpenMPI job of <paramref name="ranks"/> processes; rank 0's last line is the result.</summary>
    public static T RunUnderMpi<T>(int ranks, params string[] arguments) =>
        Start<T>(new[] { "mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", ranks.ToString() }, arguments);

    /// <summary>Runs the measurement under the given launcher command (an mpirun with its own options); rank 0's last line is the result.</summary>
    public static T RunWith<T>(string[] launcher, params string[] arguments) => Start<T>(launcher, arguments);

    private static T Start<T>(string[]? launcher, string[] arguments)
    {
        var command = new List<string>(launcher ?? Array.Empty<string>()) { Environment.ProcessPath! };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
            command.Add(typeof(ChildProcess).Assembly.Location); // running through the dotnet host, not the apphost
        command.Add(Flag);
        command.AddRange(arguments);
        var start = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true };
        foreach (var argument in command.Skip(1))
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        string? last = null;
        while (process.StandardOutput.ReadLine() is { } line)
        {
            Console.WriteLine("    " + line);
            last = line;
        }
        process.WaitForExit();
        if (process.ExitCode != 0 || last is null)
            throw new InvalidOperationException($"The benchmark child '{string.Join(' ', arguments)}' failed with exit code {process.ExitCode}.");
        // Under mpirun the line may start with terminal control codes the runtime writes first.
        return JsonSerializer.Deserialize<T>(last[Math.Max(0, last.IndexOf('{'))..])!;
    }

    /// <summary>Prints the result as the child's last output line (only rank 0's under mpirun).</summary>
    public static void Report<T>(T result)
    {
        if ((Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_RANK") ?? "0") == "0")
            Console.WriteLine(JsonSerializer.Serialize(result));
    }
}
