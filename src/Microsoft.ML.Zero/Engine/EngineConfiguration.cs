using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.Engine;

/// <summary>The optimizer-related values a trainer's own options carry, as given and as defaulted.</summary>
internal sealed record TrainerValues(
    int BatchSize, ZeroOptimizer Optimizer, double LearningRate, double Beta1, double Beta2, double Epsilon, double WeightDecay, double Momentum)
{
    /// <summary>The schedule without a DeepSpeed <c>scheduler</c> block; an engine outside a trainer keeps the rate constant.</summary>
    public ZeroSchedulerType Scheduler { get; init; } = ZeroSchedulerType.Constant;

    /// <summary>The warm-up share of the run's steps, for the Linear schedule and a scheduler's "auto" warm-up.</summary>
    public double WarmupRatio { get; init; }

    /// <summary>AdamW with the default betas and epsilon, for options that name only the rate and weight decay.</summary>
    public static TrainerValues AdamW(int batchSize, double learningRate = OptimizerDefaults.LearningRate, double weightDecay = OptimizerDefaults.WeightDecay) =>
        new(batchSize, ZeroOptimizer.AdamW, learningRate, OptimizerDefaults.Beta1, OptimizerDefaults.Beta2, OptimizerDefaults.Epsilon, weightDecay, 0);
}

/// <summary>
/// A trainer's options merged with its <see cref="DeepSpeedOptions"/>: values the DeepSpeedOptions leave unset (or "auto") come
/// from the trainer's options; a value both set, differently, is an error naming both (as the Hugging Face Trainer
/// rejects a ds_config that contradicts its arguments).
/// </summary>
internal sealed record EngineConfiguration(BatchSizes Batch, EngineSettings Settings, int StepsPerPrint, bool WallClockBreakdown, IReadOnlyList<string> Warnings,
    MonitorOptions TensorBoard, MonitorOptions CsvMonitor, PrecisionChoice Precision)
{
    public static EngineConfiguration Resolve(string optionsName, DeepSpeedOptions? zero, TrainerValues given, TrainerValues defaults, int worldSize,
        Func<string, bool>? excludeFromWeightDecay)
    {
        zero ??= new DeepSpeedOptions();
        zero.Validate();
        var optimizer = zero.Optimizer;
        T Pick<T>(string option, Func<TrainerValues, T> value, string key, T? configured) where T : struct
        {
            if (configured is not { } set)
                return value(given);
            if (!EqualityComparer<T>.Default.Equals(value(given), value(defaults)) && !EqualityComparer<T>.Default.Equals(value(given), set))
                throw new ArgumentException(
                    $"{optionsName}.{option} is {value(given)} but the DeepSpeed settings set {key} to {set}. Set one of them, or write \"auto\" in the ds_config to take {optionsName}.{option}.");
            return set;
        }

        // The trainer's BatchSize is the micro-batch unless the config pins it through train_batch_size and gradient_accumulation_steps.
        bool configFixesMicroBatch = zero.TrainMicroBatchSizePerGpu is not null || (zero.TrainBatchSize is not null && zero.GradientAccumulationSteps is not null);
        int? micro = configFixesMicroBatch ? zero.TrainMicroBatchSizePerGpu : given.BatchSize;
        var batch = BatchSizes.Resolve(zero.TrainBatchSize, micro, zero.GradientAccumulationSteps, worldSize);
        Pick("BatchSize", v => v.BatchSize, "train_micro_batch_size_per_gpu", (int?)batch.TrainMicroBatchSizePerGpu);

        var settings = new OptimizerSettings(
            Pick("Optimizer", v => v.Optimizer, "optimizer.type", optimizer.Type),
            Pick("LearningRate", v => v.LearningRate, "optimizer.params.lr", optimizer.LearningRate),
            Pick("Beta1", v => v.Beta1, "optimizer.params.betas[0]", optimizer.Beta1),
            Pick("Beta2", v => v.Beta2, "optimizer.params.betas[1]", optimizer.Beta2),
            Pick("Epsilon", v => v.Epsilon, "optimizer.params.eps", optimizer.Epsilon),
            Pick("WeightDecay", v => v.WeightDecay, "optimizer.params.weight_decay", optimizer.WeightDecay),
            Pick("Momentum", v => v.Momentum, "optimizer.params.momentum", optimizer.Momentum))
        {
            Dampening = optimizer.Dampening,
            Nesterov = optimizer.Nesterov,
            ExcludeFromWeightDecay = excludeFromWeightDecay,
        };
        if (settings.Nesterov && (settings.Momentum <= 0 || settings.Dampening != 0))
            throw new ArgumentOutOfRangeException("DeepSpeedOptions.Optimizer.Nesterov", "Nesterov momentum needs a momentum above 0 and dampening 0 (optimizer.params.nesterov).");
        var precision = PrecisionChoice.Resolve(zero.Precision);
        var engine = new EngineSettings(precision.Precision, zero.Fp16, zero.GradientClipping, zero.PrescaleGradients, zero.GradientPredivideFactor, settings,
            Schedule(optionsName, zero.Scheduler, given, defaults))
        {
            OverlapCommunication = zero.ZeroOptimization.OverlapCommunication,
            SkipNonFiniteSteps = zero.SkipNonFiniteSteps,
            ReduceBucketSize = zero.ZeroOptimization.ReduceBucketSize,
            CommunicationDataType = zero.CommunicationDataType ?? ZeroPrecision.Fp32,
            // Auto's 16-bit accumulation type applies only where it picked bf16.
            GradientAccumulationDataType = precision.Precision == ZeroPrecision.Fp32 ? null : zero.GradientAccumulationDataType,
        };
        return new EngineConfiguration(batch, engine, zero.StepsPerPrint, zero.WallClockBreakdown, zero.ConfigWarnings, zero.TensorBoard, zero.CsvMonitor, precision);
    }

    // A DeepSpeed scheduler replaces the trainer's schedule, as in Hugging Face's Trainer, and takes the trainer's warm-up
    // where it says "auto"; a trainer schedule or warm-up set away from its default that the scheduler would override is
    // a conflict, as any other value set on both sides.
    private static LearningRateSchedule? Schedule(string optionsName, LearningRateSchedule? configured, TrainerValues given, TrainerValues defaults)
    {
        if (configured is null)
            return given.Scheduler == ZeroSchedulerType.Linear ? new LinearScheduleWithWarmup(given.WarmupRatio) : null;
        string scheduler = $"the DeepSpeed settings set scheduler to {configured.GetType().Name}";
        if (given.Scheduler != defaults.Scheduler)
            throw new ArgumentException($"{optionsName}.LearningRateSchedulerType is {given.Scheduler} but {scheduler}. Set one of them.");
        if (given.WarmupRatio != defaults.WarmupRatio && !configured.TakesTrainerWarmup)
            throw new ArgumentException($"{optionsName}.WarmupRatio is {given.WarmupRatio} but {scheduler}, which sets its own warm-up. " +
                $"Write \"auto\" for scheduler.params.warmup_num_steps to take {optionsName}.WarmupRatio, or leave WarmupRatio at {defaults.WarmupRatio}.");
        return configured.TakesTrainerWarmup ? configured.WithTrainerWarmup(given.WarmupRatio) : configured;
    }

    /// <summary>A one-line summary for the training log.</summary>
    public string Describe(int worldSize) =>
        $"{worldSize} rank(s) x micro-batch {Batch.TrainMicroBatchSizePerGpu} x {Batch.GradientAccumulationSteps} accumulation step(s) = batch {Batch.TrainBatchSize}, " +
        $"{Settings.Precision}, {Settings.Optimizer.Kind} lr {Settings.Optimizer.LearningRate:G4}" +
        (Settings.Scheduler is { } schedule ? $" with {schedule.Describe()}" : "") +
        (Settings.GradientClipping > 0 ? $", gradients clipped to norm {Settings.GradientClipping:G4}" : "");
}
