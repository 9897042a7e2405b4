using Microsoft.ML.Runtime;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Engine;
using Microsoft.ML.Zero.Monitoring;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// A trainer's log lines, written only by the process that holds rank 0 so an MPI job logs each line once. They go to
/// <c>MLContext.Log</c>, and to standard output when the console shows plain lines; warnings are shown on the
/// console unless it shows nothing.
/// </summary>
internal sealed class RankZeroLog(IChannel channel, RankLayout layout, ZeroProgress progress)
{
    private readonly ZeroProgress _console = TrainingMonitors.Resolve(progress);

    public bool IsMainProcess => layout.IsMainProcess;

    public void Info(string message)
    {
        if (!layout.IsMainProcess)
            return;
        channel.Info(message);
        if (_console == ZeroProgress.Lines)
            Console.WriteLine(message);
    }

    /// <summary>Logs what reading the settings found but did not use, and why the run trains in its precision when that needs saying.</summary>
    public void Notes(EngineConfiguration config)
    {
        foreach (var warning in config.Warnings)
            Warning(warning);
        if (config.Precision.Message is not { } message)
            return;
        if (config.Precision.IsWarning)
            Warning(message);
        else
            Info(message);
    }

    public void Warning(string message)
    {
        if (!layout.IsMainProcess)
            return;
        channel.Warning(message);
        if (_console != ZeroProgress.None)
            Console.WriteLine("Warning: " + message);
    }
}
