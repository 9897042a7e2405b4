namespace Microsoft.ML.Zero.Training;

/// <summary>What the data-parallel engine needs to take a step, resolved from the trainer's options and <see cref="ZeroOptions"/>.</summary>
internal sealed record EngineSettings(
    ZeroPrecision Precision,
    Fp16Options LossScaling,
    double GradientClipping,
    bool PrescaleGradients,
    double GradientPredivideFactor,
    OptimizerSettings Optimizer,
    LearningRateSchedule? Schedule)
{
    /// <summary>Plain fp32 training with a constant learning rate.</summary>
    public static EngineSettings Fp32(OptimizerSettings optimizer) => new(ZeroPrecision.Fp32, new Fp16Options(), 0, false, 1, optimizer, null);
}
