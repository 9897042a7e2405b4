namespace Microsoft.ML.Zero.Training;

/// <summary>
/// train_batch_size = micro-batch per rank x gradient accumulation steps x world size, with DeepSpeed's rules: any
/// two of the three sizes give the third, one alone assumes no accumulation, and an inconsistent triple is an error.
/// </summary>
internal readonly record struct BatchSizes(int TrainBatchSize, int TrainMicroBatchSizePerGpu, int GradientAccumulationSteps)
{
    public static BatchSizes Resolve(int? trainBatch, int? microBatch, int? accumulation, int worldSize)
    {
        if (trainBatch is null && microBatch is null)
            throw new ArgumentException("Either train_batch_size (DeepSpeedOptions.TrainBatchSize) or train_micro_batch_size_per_gpu (the trainer's BatchSize) must be given.");
        int train, micro, steps;
        if (trainBatch is { } t && microBatch is { } m && accumulation is { } g)
            (train, micro, steps) = (t, m, g);
        else if (trainBatch is { } t2 && microBatch is { } m2)
            (train, micro, steps) = (t2, m2, t2 / m2 / worldSize);
        else if (trainBatch is { } t3 && accumulation is { } g3)
            (train, micro, steps) = (t3, t3 / worldSize / g3, g3);
        else if (microBatch is { } m4 && accumulation is { } g4)
            (train, micro, steps) = (m4 * g4 * worldSize, m4, g4);
        else if (trainBatch is { } t5)
            (train, micro, steps) = (t5, t5 / worldSize, 1);
        else
            (train, micro, steps) = (microBatch!.Value * worldSize, microBatch.Value, 1);

        if (micro < 1 || steps < 1 || train != micro * steps * worldSize)
            throw new ArgumentException(
                $"Check batch related parameters. train_batch_size is not equal to micro_batch_per_gpu * gradient_acc_step * world_size: " +
                $"{train} != {micro} * {steps} * {worldSize}.");
        return new BatchSizes(train, micro, steps);
    }
}
