namespace Microsoft.ML.Zero.Config;

/// <summary>
/// Hugging Face's default schedule (<c>get_linear_schedule_with_warmup</c>, <c>lr_scheduler_type "linear"</c>): the rate
/// rises linearly from 0 over the first <see cref="WarmupRatio"/> of the run's optimizer steps, rounded up, then falls
/// linearly to 0 at the end of the run. What a trainer applies with <see cref="ZeroSchedulerType.Linear"/>.
/// </summary>
internal sealed class LinearScheduleWithWarmup : LearningRateSchedule
{
    public LinearScheduleWithWarmup(double warmupRatio) => WarmupRatio = warmupRatio;

    /// <summary>The share of the run's optimizer steps that warm up [<c>warmup_ratio</c>].</summary>
    public double WarmupRatio { get; }

    /// <summary>The run's optimizer steps; null until <see cref="Resolve"/>.</summary>
    public long? TotalSteps { get; private set; }

    /// <summary>Warm-up steps: <see cref="WarmupRatio"/> of <see cref="TotalSteps"/>, rounded up, as Hugging Face's <c>get_warmup_steps</c>.</summary>
    public long WarmupSteps => (long)Math.Ceiling(WarmupRatio * (TotalSteps ?? 0));

    internal override double LearningRate(long iteration, double optimizerLearningRate)
    {
        // Hugging Face's LambdaLR counts the steps already taken: the first step is 0, where this schedule's iteration is -1.
        long step = iteration + 1, warmup = WarmupSteps, total = TotalSteps ?? throw new InvalidOperationException("The schedule has no run length yet.");
        double factor = step < warmup
            ? (double)step / Math.Max(1, warmup)
            : Math.Max(0, (double)(total - step) / Math.Max(1, total - warmup));
        return optimizerLearningRate * factor;
    }

    internal override LearningRateSchedule Resolve(long totalSteps)
    {
        var copy = (LinearScheduleWithWarmup)MemberwiseClone();
        copy.TotalSteps = totalSteps;
        return copy;
    }

    internal override void Validate(string prefix) =>
        OptionCheck.Require(WarmupRatio is >= 0 and <= 1, prefix + nameof(WarmupRatio), WarmupRatio, "in [0, 1]");

    internal override string Describe() => FormattableString.Invariant(
        $"linear decay after {WarmupRatio:0.##%} warm-up{(TotalSteps is { } total ? $" ({WarmupSteps} of {total} steps)" : "")}");
}
