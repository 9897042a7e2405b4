using TorchSharp.Modules;
using static TorchSharp.torch.utils;

namespace Microsoft.ML.Zero.Monitoring;

/// <summary>
/// DeepSpeed's <c>tensorboard</c> monitor: scalar events in the job's folder (TorchSharp's SummaryWriter writes the
/// <c>events.out.tfevents.*</c> file TensorBoard reads), under DeepSpeed's metric names, with samples seen as the step.
/// </summary>
internal sealed class TensorBoardMonitor : ITrainingMonitor, IMetricWriter
{
    private readonly SummaryWriter _writer;

    public TensorBoardMonitor(string folder)
    {
        Directory.CreateDirectory(folder);
        _writer = tensorboard.SummaryWriter(folder);
    }

    public void Start(long stepsTaken, long totalSteps)
    {
    }

    public void StepTaken(StepRecord step) => Write(MetricNames.Of(step), step.Samples);

    public void EpochCompleted(EpochRecord epoch) => Write(MetricNames.Of(epoch), epoch.Samples);

    // TensorBoard's steps are 32-bit here; past that the step is held at the largest value rather than wrapping.
    public void Write(IEnumerable<(string Name, double Value)> values, long samples)
    {
        foreach (var (name, value) in values)
            _writer.add_scalar(name, (float)value, (int)Math.Min(samples, int.MaxValue));
    }

    public void Dispose()
    {
    }
}
