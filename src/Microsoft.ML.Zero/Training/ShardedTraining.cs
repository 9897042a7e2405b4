using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Distributed;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Training;

/// <summary>One rank's epochs: read the rank's shard, then one data-parallel engine step per global batch.</summary>
internal sealed class ShardedTraining
{
    private readonly long _rowCount;
    private readonly int _microBatchSize;
    private readonly int _epochs;
    private readonly int _seed;
    private readonly OptimizerSettings _optimizer;

    public ShardedTraining(long rowCount, int microBatchSize, int epochs, int seed, OptimizerSettings optimizer)
    {
        _rowCount = rowCount;
        _microBatchSize = microBatchSize;
        _epochs = epochs;
        _seed = seed;
        _optimizer = optimizer;
    }

    /// <summary>Called by rank 0 after each epoch with the epoch number (from 1) and its mean training loss.</summary>
    public Action<int, double>? EpochCompleted { get; init; }

    /// <summary>Trains <paramref name="model"/>; <paramref name="readEpoch"/> reads the listed rows (positions in the data).</summary>
    public void Run(nn.Module model, ICommunicator communicator, Func<int[], IEpochShard> readEpoch)
    {
        var plan = new ShardPlan(_rowCount, communicator.WorldSize, communicator.Rank, _microBatchSize, _seed);
        model.train();
        using var engine = new DataParallelEngine(model, communicator, _optimizer);
        for (int epoch = 0; epoch < _epochs; epoch++)
        {
            var shard = readEpoch(plan.RowsForEpoch(epoch));
            double lossTotal = 0;
            for (int step = 0; step < plan.StepsPerEpoch; step++)
            {
                var (start, count) = plan.MicroBatch(step, shard.Count);
                int globalRows = plan.GlobalRowsInStep(step);
                float loss = engine.Step(() => count == 0 ? null : shard.LossSum(start, count), globalRows);
                lossTotal += loss * globalRows;
            }
            if (communicator.Rank == 0)
                EpochCompleted?.Invoke(epoch + 1, lossTotal / _rowCount);
        }
        model.eval();
    }
}
