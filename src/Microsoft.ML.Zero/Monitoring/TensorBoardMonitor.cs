using TorchSharp.Modules;
using static TorchSharp.torch.utils;

namespace Microsoft.ML.Zero.Monitoring;

/// <summary>
/// DeepSpeed's <c>tensorboard</c> monitor: scalar events in the job's folder (TorchSharp's SummaryWriter writes the
/// <c>events.out.tfevents.*</c> file TensorBoard reads), under DeepSpeed's metric names, with samples seen as the step.
/// </summary>
internal sealed class TensorBoardMonitor : IMetricWriter
{
    private readonly SummaryWriter _writer;

    public TensorBoardMonitor(string folder)
    {
        Directory.CreateDirectory(folder);
        _writer = tensorboard.SummaryWriter(folder);
    }

    // TensorBoard's steps are 32-bit here; past that the step is held at the largest value rather than wrapping.
    public void Write(IEnumerable<(string Name, double Value)> values, long samples)
    {
        foreach (var (name, value) in values)
            _writer.add_scalar(name, (float)value, (int)Math.Min(samples, int.MaxValue), DateTimeOffset.UtcNow.ToUnixTimeSeconds());
    }

    public void Dispose()
    {
    }
}
