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

    public static T Run<T>(params string[] arguments)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true };
        start.ArgumentList.Add(typeof(ChildProcess).Assembly.Location);
        start.ArgumentList.Add(Flag);
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) != "dotnet")
            start.ArgumentList.RemoveAt(0); // running as the apphost: no dll argument
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
        return JsonSerializer.Deserialize<T>(last)!;
    }

    /// <summary>Prints the result as the child's last output line.</summary>
    public static void Report<T>(T result) => Console.WriteLine(JsonSerializer.Serialize(result));
}
