using Spectre.Console;

namespace Microsoft.ML.Zero.Monitoring;

/// <summary>The monitors a run reports to: the console progress bar (the metric files are the engine's).</summary>
internal static class TrainingMonitors
{
    /// <summary><see cref="ZeroProgress.Auto"/> resolved against the console this process has.</summary>
    public static ZeroProgress Resolve(ZeroProgress progress) =>
        progress == ZeroProgress.Auto ? ConsoleProgressBar.TerminalAttached ? ZeroProgress.Bar : ZeroProgress.Lines : progress;

    /// <summary>The monitors of the process that holds rank 0; other processes report nothing.</summary>
    public static IReadOnlyList<ITrainingMonitor> Create(ZeroProgress progress, bool mainProcess)
    {
        var monitors = new List<ITrainingMonitor>();
        if (!mainProcess)
            return monitors;
        if (Resolve(progress) == ZeroProgress.Bar)
            monitors.Add(new ConsoleProgressBar(AnsiConsole.Console));
        return monitors;
    }
}
