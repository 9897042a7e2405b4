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
        // Int128: the product of three ints cannot overflow it, so an oversized batch is named instead of wrapping.
        Int128 train;
        int micro, steps;
        if (trainBatch is { } t && microBatch is { } m && accumulation is { } g)
            (train, micro, steps) = (t, m, g);
        else if (trainBatch is { } t2 && microBatch is { } m2)
            (train, micro, steps) = (t2, m2, t2 / m2 / worldSize);
        else if (trainBatch is { } t3 && accumulation is { } g3)
            (train, micro, steps) = (t3, t3 / worldSize / g3, g3);
        else if (microBatch is { } m4 && accumulation is { } g4)
            (train, micro, steps) = ((Int128)m4 * g4 * worldSize, m4, g4);
        else if (trainBatch is { } t5)
            (train, micro, steps) = (t5, t5 / worldSize, 1);
        else
            (train, micro, steps) = ((Int128)microBatch!.Value * worldSize, microBatch.Value, 1);

        Int128 product = (Int128)micro * steps * worldSize;
        if (product > int.MaxValue)
            throw new ArgumentException(
                $"train_micro_batch_size_per_gpu {micro} x gradient_accumulation_steps {steps} x world size {worldSize} = {product} rows per step; " +
                $"the batch (train_batch_size) must be at most {int.MaxValue}. Lower the trainer's BatchSize (train_micro_batch_size_per_gpu), " +
                "gradient_accumulation_steps or WorldSize.");
        if (micro < 1 || steps < 1 || train != product)
            throw new ArgumentException(
                $"Check batch related parameters. train_batch_size is not equal to micro_batch_per_gpu * gradient_acc_step * world_size: " +
                $"{train} != {micro} * {steps} * {worldSize}.");
        return new BatchSizes((int)train, micro, steps);
    }
}
