namespace Microsoft.ML.Zero.Training;

/// <summary>What the data-parallel engine needs to take a step, resolved from the trainer's options and <see cref="DeepSpeedOptions"/>.</summary>
internal sealed record EngineSettings(
    ZeroPrecision Precision,
    Fp16Options LossScaling,
    double GradientClipping,
    bool PrescaleGradients,
    double GradientPredivideFactor,
    OptimizerSettings Optimizer,
    LearningRateSchedule? Scheduler)
{
    /// <summary>All-reduce gradient buckets while backward runs (overlap_comm), rather than the whole buffer after it.</summary>
    public bool OverlapCommunication { get; init; }

    /// <summary>In fp32 and bf16, skip a step whose loss or gradient norm is not finite rather than stop with an error.</summary>
    public bool SkipNonFiniteSteps { get; init; }

    /// <summary>Values per all-reduce bucket when overlapping (reduce_bucket_size).</summary>
    public long ReduceBucketSize { get; init; } = ZeroOptimizationOptions.DefaultReduceBucketSize;

    /// <summary>The type gradients are all-reduced in (communication_data_type); Fp32 sums them exactly to fp32.</summary>
    public ZeroPrecision CommunicationDataType { get; init; } = ZeroPrecision.Fp32;

    /// <summary>
    /// The type gradients accumulate in over a step's micro-batches (data_types.grad_accum_dtype): Fp32, or the model's
    /// Bf16/Fp16. Null takes DeepSpeed's default for stage 0: fp32 under bf16, the model's type otherwise.
    /// </summary>
    public ZeroPrecision? GradientAccumulationDataType { get; init; }

    /// <summary>Whether gradients accumulate in fp32 (always in fp32 training).</summary>
    public bool AccumulatesInFp32 => (GradientAccumulationDataType ?? (Precision == ZeroPrecision.Bf16 ? ZeroPrecision.Fp32 : Precision)) == ZeroPrecision.Fp32;

    /// <summary>
    /// Builds the optimizer over the parameters it updates (the fp32 master weights in bf16/fp16), instead of
    /// <see cref="Optimizer"/>; the schedule then scales each group's own learning rate.
    /// </summary>
    public Func<IReadOnlyList<TorchSharp.Modules.Parameter>, TorchSharp.torch.optim.Optimizer>? OptimizerFactory { get; init; }

    /// <summary>Plain fp32 training with a constant learning rate.</summary>
    public static EngineSettings Fp32(OptimizerSettings optimizer) => new(ZeroPrecision.Fp32, new Fp16Options(), 0, false, 1, optimizer, null);
}
