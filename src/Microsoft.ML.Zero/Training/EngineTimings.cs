using System.Diagnostics;

namespace Microsoft.ML.Zero.Training;

/// <summary>Time spent in each part of the steps since the last reset (DeepSpeed's <c>wall_clock_breakdown</c>).</summary>
internal sealed class EngineTimings
{
    public TimeSpan Forward, Backward, AllReduce, OptimizerStep;

    public static long Start() => Stopwatch.GetTimestamp();

    public override string ToString() =>
        $"forward {Forward.TotalMilliseconds:F0} ms, backward {Backward.TotalMilliseconds:F0} ms, all-reduce {AllReduce.TotalMilliseconds:F0} ms, optimizer step {OptimizerStep.TotalMilliseconds:F0} ms";

    public void Reset() => Forward = Backward = AllReduce = OptimizerStep = TimeSpan.Zero;
}
