using System.Globalization;
namespace Microsoft.ML.Zero.Monitoring;

/// <summary>One optimizer step as rank 0 saw it. <see cref="Samples"/> counts the rows of every rank so far.</summary>
internal sealed record StepRecord(
    int Epoch, int Epochs, int StepInEpoch, int StepsPerEpoch, long StepsTaken, long TotalSteps, long Samples,
    double Loss, double LearningRate, double? LossScale, bool Skipped, double SamplesPerSecond);

/// <summary>The end of an epoch: its mean training loss and, when the validation set was scored at its end, the metrics.</summary>
internal sealed record EpochRecord(int Epoch, int Epochs, long Samples, double MeanLoss, ValidationMetrics? Validation)
{
    /// <summary>The epoch's log line.</summary>
    public string Describe() =>
        string.Create(CultureInfo.InvariantCulture, $"Epoch {Epoch}/{Epochs}: mean training loss {MeanLoss:F4}.") +
        (Validation is { } metrics ? $" Validation {metrics.Describe()}." : "");
}

/// <summary>An evaluation of the validation set after optimizer step <see cref="StepsTaken"/>, and whether it is the best so far.</summary>
internal sealed record EvaluationRecord(int Epoch, int Epochs, int StepInEpoch, int StepsPerEpoch, long StepsTaken, long Samples, ValidationMetrics Metrics, bool IsBest)
{
    /// <summary>The evaluation's log line.</summary>
    public string Describe() =>
        $"Validation after step {StepsTaken} (epoch {Epoch}/{Epochs}, step {StepInEpoch}/{StepsPerEpoch}): {Metrics.Describe()}" + (IsBest ? ", the best so far." : ".");
}

/// <summary>
/// Receives rank 0's record of a run as it trains: a progress display, or a metrics file writer. Called from the thread
/// of rank 0 only; <see cref="IDisposable.Dispose"/> ends the run's output.
/// </summary>
internal interface ITrainingMonitor : IDisposable
{
    /// <summary>Training starts at <paramref name="stepsTaken"/> (above 0 when resumed) of <paramref name="totalSteps"/>.</summary>
    void Start(long stepsTaken, long totalSteps);

    void StepTaken(StepRecord step);

    void EpochCompleted(EpochRecord epoch);

    /// <summary>The validation set was scored; at the end of an epoch this comes before <see cref="EpochCompleted"/>.</summary>
    void Evaluated(EvaluationRecord evaluation)
    {
    }
}

/// <summary>A metrics file writer (csv_monitor, tensorboard): named values at a step counted in samples.</summary>
internal interface IMetricWriter : IDisposable
{
    void Write(IEnumerable<(string Name, double Value)> values, long samples);

    /// <summary>
    /// The run resumes from a checkpoint taken at <paramref name="samples"/>: what was written past it came from steps
    /// that will be taken again. The default does nothing: TensorBoard drops such points itself (when a step goes
    /// back, it purges the later ones).
    /// </summary>
    void Resume(long samples)
    {
    }
}

/// <summary>
/// The metrics DeepSpeed's monitors write, under DeepSpeed's names, with the number of samples seen as the x axis.
/// </summary>
internal static class MetricNames
{
    public const string TrainLoss = "Train/Samples/train_loss";
    public const string LearningRate = "Train/Samples/lr";
    public const string LossScale = "Train/Samples/loss_scale";
    public const string EpochLoss = "Train/Samples/epoch_loss";
    public const string EvaluationPrefix = "Eval/Samples/";

    /// <summary>The values of an optimizer step: loss, learning rate and, in fp16, the loss scale.</summary>
    public static IEnumerable<(string Name, double Value)> Of(double loss, double learningRate, double? lossScale)
    {
        yield return (TrainLoss, loss);
        yield return (LearningRate, learningRate);
        if (lossScale is { } scale)
            yield return (LossScale, scale);
    }

    /// <summary>The writers a run's settings ask for, in the process that holds rank 0.</summary>
    public static List<IMetricWriter> Writers(MonitorOptions tensorBoard, MonitorOptions csv)
    {
        var writers = new List<IMetricWriter>();
        try
        {
            if (tensorBoard.Enabled)
                writers.Add(new TensorBoardMonitor(tensorBoard.Folder));
            if (csv.Enabled)
                writers.Add(new CsvMonitor(csv.Folder));
            return writers;
        }
        catch
        {
            foreach (var writer in writers)
                writer.Dispose();
            throw;
        }
    }

    public static IEnumerable<(string Name, double Value)> Of(EpochRecord epoch)
    {
        yield return (EpochLoss, epoch.MeanLoss);
    }

    /// <summary>An evaluation's metrics: Eval/Samples/accuracy, Eval/Samples/macro_f1, Eval/Samples/log_loss.</summary>
    public static IEnumerable<(string Name, double Value)> Of(ValidationMetrics metrics) =>
        metrics.Values.Select(v => (EvaluationPrefix + ValidationMetrics.FileName(v.Key), v.Value));
}
