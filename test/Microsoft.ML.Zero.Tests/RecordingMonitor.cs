using Microsoft.ML.Zero.Monitoring;

namespace Microsoft.ML.Zero.Tests;

/// <summary>Keeps what a run reports to its monitors, for assertions.</summary>
internal sealed class RecordingMonitor : ITrainingMonitor
{
    public List<(long StepsTaken, long TotalSteps)> Starts { get; } = new();

    public List<StepRecord> Steps { get; } = new();

    public List<EpochRecord> Epochs { get; } = new();

    public List<EvaluationRecord> Evaluations { get; } = new();

    public bool Disposed { get; private set; }

    public void Start(long stepsTaken, long totalSteps) => Starts.Add((stepsTaken, totalSteps));

    public void StepTaken(StepRecord step) => Steps.Add(step);

    public void EpochCompleted(EpochRecord epoch) => Epochs.Add(epoch);

    public void Evaluated(EvaluationRecord evaluation) => Evaluations.Add(evaluation);

    public void Dispose() => Disposed = true;
}
