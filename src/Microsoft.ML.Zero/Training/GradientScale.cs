namespace Microsoft.ML.Zero.Training;

/// <summary>
/// The factors between the losses a rank backpropagates and the gradient the optimizer steps with, for one step.
/// <para>
/// The step must follow the mean over the W ranks of what each backpropagated: g = 1/W · Σ_ranks Σ_micro-batches
/// ∇(share · loss), where share is the caller's weight for a micro-batch's loss (1/gradient_accumulation_steps for a
/// mean loss, or W/rows for a summed one, so that uneven windows still give the mean over all rows).
/// </para>
/// <para>
/// Backward runs on loss · share · S / P, where S is the fp16 loss scale (1 in fp32 and bf16) and P the predivide factor:
/// W with prescale_gradients, else gradient_predivide_factor (1 by default). Dividing before the sum keeps fp16 sums in
/// range, as DeepSpeed does. Each rank's buffer then holds S/P · Σ_micro ∇(share · loss), the all-reduce adds the W
/// buffers, so sum = W · S/P · g, and g = sum · P / (W · S): <see cref="OnSum"/>. Clipping multiplies that further.
/// </para>
/// </summary>
internal readonly record struct GradientScale(double Predivide, double LossScale, int WorldSize)
{
    /// <summary>The scale of <paramref name="settings"/> on <paramref name="worldSize"/> ranks at loss scale <paramref name="lossScale"/>.</summary>
    public static GradientScale Of(EngineSettings settings, int worldSize, double lossScale) =>
        new(settings.PrescaleGradients ? worldSize : settings.GradientPredivideFactor, lossScale, worldSize);

    /// <summary>What a micro-batch's loss of weight <paramref name="share"/> is multiplied by before backward.</summary>
    public double OnLoss(double share) => share * LossScale / Predivide;

    /// <summary>What the all-reduced gradients are multiplied by to give the mean gradient.</summary>
    public double OnSum => Predivide / (WorldSize * LossScale);
}
