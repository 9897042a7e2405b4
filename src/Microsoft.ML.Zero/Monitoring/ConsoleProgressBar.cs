using System.Globalization;
using Spectre.Console;

namespace Microsoft.ML.Zero.Monitoring;

/// <summary>
/// A live progress bar on the terminal (Spectre.Console): epoch, step, loss, learning rate, loss scale, samples/s and the
/// time left. Spectre redraws it from its own thread; each step only updates the task's value and description.
/// </summary>
internal sealed class ConsoleProgressBar : ITrainingMonitor
{
    private readonly IAnsiConsole _console;
    private readonly TaskCompletionSource<ProgressTask> _task = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _display;

    public ConsoleProgressBar(IAnsiConsole console) => _console = console;

    /// <summary>True when standard output is an interactive terminal, where a live bar can redraw itself.</summary>
    public static bool TerminalAttached => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    // Null until the display runs, and for good when it could not start (another live display holds the console).
    private ProgressTask? _progress;

    private string _lastValidation = "";

    public void Start(long stepsTaken, long totalSteps)
    {
        try
        {
            _display = _console.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .StartAsync(async context =>
                {
                    _task.TrySetResult(context.AddTask("Training", maxValue: 1));
                    await _finished.Task;
                });
            System.Threading.Tasks.Task.WhenAny(_task.Task, _display).Wait();
        }
        catch (Exception)
        {
            // Training goes on without the bar; the log lines still reach MLContext.Log.
        }
        if (!_task.Task.IsCompletedSuccessfully)
            return;
        _progress = _task.Task.Result;
        _progress.MaxValue = totalSteps;
        _progress.Value = stepsTaken;
    }

    public void StepTaken(StepRecord step)
    {
        if (_progress is null)
            return;
        string line = string.Create(CultureInfo.InvariantCulture,
            $"Epoch {step.Epoch}/{step.Epochs}  step {step.StepInEpoch}/{step.StepsPerEpoch}  loss {step.Loss:F4}  lr {step.LearningRate:G3}");
        if (step.LossScale is { } scale)
            line += string.Create(CultureInfo.InvariantCulture, $"  loss scale {scale:G}");
        line += string.Create(CultureInfo.InvariantCulture, $"  {step.SamplesPerSecond:F1} samples/s") + _lastValidation;
        _progress.Description = Markup.Escape(line);
        _progress.Value = step.StepsTaken;
    }

    // Epoch summaries stay on the screen above the bar.
    public void EpochCompleted(EpochRecord epoch)
    {
        if (_progress is not null)
            _console.MarkupLine(Markup.Escape(epoch.Describe()));
    }

    // The latest metrics stay in the bar's line; evaluations between epochs' ends stay on the screen too.
    public void Evaluated(EvaluationRecord evaluation)
    {
        _lastValidation = $"  validation {evaluation.Metrics.Describe()}";
        if (_progress is not null && evaluation.StepInEpoch != evaluation.StepsPerEpoch)
            _console.MarkupLine(Markup.Escape(evaluation.Describe()));
    }

    // Called from a finally block: a display that failed must not hide the training's own exception.
    public void Dispose()
    {
        _finished.TrySetResult();
        try
        {
            _display?.Wait();
        }
        catch (AggregateException)
        {
        }
    }
}
