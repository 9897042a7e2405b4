using System.Text.Json.Serialization;
using Microsoft.ML.Zero.Config;
namespace Microsoft.ML.Zero.Training;

/// <summary>
/// Everything beyond tensors that a checkpoint must carry to continue a run exactly: where in the data the run is,
/// the step counters (the LR schedule's position is the global step), the loss scaler, and what the run was, so a
/// resume can refuse a checkpoint that does not fit.
/// </summary>
internal sealed record TrainingState
{
    /// <summary>The layout of the checkpoint files this build writes and reads.</summary>
    public const int CurrentFormatVersion = 1;

    public int FormatVersion { get; init; } = CurrentFormatVersion;

    public long GlobalStep { get; init; }

    public long SkippedSteps { get; init; }

    /// <summary>Samples seen by all ranks so far: the step of the metric files.</summary>
    public long GlobalSamples { get; init; }

    /// <summary>The epoch in progress (from 0) and the optimizer steps of it already taken.</summary>
    public int Epoch { get; init; }

    public int StepInEpoch { get; init; }

    /// <summary>Rows x loss summed so far in the epoch, so the epoch's mean loss is reported as without the break.</summary>
    public double EpochLossTotal { get; init; }

    public LossScalerState? LossScaler { get; init; }

    /// <summary>The best validation metric so far and its optimizer step (from 1), with the early-stopping count; null before any evaluation.</summary>
    public double? BestMetric { get; init; }

    public long BestStep { get; init; }

    public int EvaluationsWithoutImprovement { get; init; }

    public int WorldSize { get; init; }

    public int TrainBatchSize { get; init; }

    // Written under its first name, so checkpoints of every version read alike.
    [JsonPropertyName("MicroBatchPerRank")]
    public int TrainMicroBatchSizePerGpu { get; init; }

    public int GradientAccumulationSteps { get; init; }

    public long RowCount { get; init; }

    public int Seed { get; init; }

    public long ParameterCount { get; init; }

    public string Precision { get; init; } = "";

    public string Optimizer { get; init; } = "";

    /// <summary>The run's GroupByLengthWindow when it grouped batches by length; 0 (and in older checkpoints) when not.</summary>
    public int GroupByLengthWindow { get; init; }

    /// <summary>
    /// Throws an InvalidDataException naming <paramref name="source"/>, the field, its value and what was expected unless
    /// the counters and the loss scaler are in range: a resume from a zero, negative or infinite scale would train on
    /// zeroed, sign-flipped or infinite gradients, and negative counters would replay the schedule and the data.
    /// </summary>
    public void RequireInRange(string source)
    {
        static void AtLeast(long value, long minimum, string source, string field, string expected) =>
            OptionCheck.RequireInFile(value >= minimum, source, field, value, expected);

        AtLeast(GlobalStep, 0, source, nameof(GlobalStep), "0 or more");
        AtLeast(SkippedSteps, 0, source, nameof(SkippedSteps), "0 or more");
        AtLeast(GlobalSamples, 0, source, nameof(GlobalSamples), "0 or more");
        AtLeast(Epoch, 0, source, nameof(Epoch), "0 or more");
        AtLeast(StepInEpoch, 0, source, nameof(StepInEpoch), "0 or more");
        AtLeast(ParameterCount, 1, source, nameof(ParameterCount), "at least 1");
        AtLeast(BestStep, 0, source, nameof(BestStep), "0 or more");
        AtLeast(EvaluationsWithoutImprovement, 0, source, nameof(EvaluationsWithoutImprovement), "0 or more");
        OptionCheck.RequireInFile(BestMetric is null || double.IsFinite(BestMetric.Value), source, nameof(BestMetric), BestMetric ?? 0, "a finite number or null");
        AtLeast(GroupByLengthWindow, 0, source, nameof(GroupByLengthWindow), "0 (not grouped) or more");
        if (LossScaler is { } scaler)
        {
            const string Prefix = nameof(LossScaler) + ".";
            OptionCheck.RequireInFile(scaler.Scale > 0 && double.IsFinite(scaler.Scale), source, Prefix + nameof(scaler.Scale), scaler.Scale, "a finite number above 0");
            AtLeast(scaler.HysteresisLeft, 0, source, Prefix + nameof(scaler.HysteresisLeft), "0 or more");
            AtLeast(scaler.Iteration, 0, source, Prefix + nameof(scaler.Iteration), "0 or more");
            AtLeast(scaler.LastOverflowIteration, -1, source, Prefix + nameof(scaler.LastOverflowIteration), "-1 (no overflow yet) or more");
        }
    }
}

/// <summary>The dynamic loss scaler's position (DeepSpeed's cur_scale, cur_hysteresis, cur_iter, last_overflow_iter).</summary>
internal sealed record LossScalerState(double Scale, int HysteresisLeft, long Iteration, long LastOverflowIteration);
