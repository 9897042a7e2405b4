using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Models;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Training;

/// <summary>One rank's training of an MLP classifier on its shard of a tabular data set.</summary>
internal sealed class TabularTraining
{
    private readonly TabularColumns _columns;
    private readonly long _rowCount;
    private readonly int _microBatchSize;
    private readonly int _epochs;
    private readonly int _seed;
    private readonly OptimizerSettings _optimizer;

    public TabularTraining(TabularColumns columns, long rowCount, int microBatchSize, int epochs, int seed, OptimizerSettings optimizer)
    {
        _columns = columns;
        _rowCount = rowCount;
        _microBatchSize = microBatchSize;
        _epochs = epochs;
        _seed = seed;
        _optimizer = optimizer;
    }

    /// <summary>Called by rank 0 after each epoch with the epoch number (from 1) and its mean training loss.</summary>
    public Action<int, double>? EpochCompleted { get; init; }

    public void Run(MlpClassifier model, ICommunicator communicator)
    {
        var plan = new ShardPlan(_rowCount, communicator.WorldSize, communicator.Rank, _microBatchSize, _seed);
        int featureCount = _columns.FeatureCount;
        model.train();
        using var engine = new DataParallelEngine(model, communicator, _optimizer);
        for (int epoch = 0; epoch < _epochs; epoch++)
        {
            int[] rows = plan.RowsForEpoch(epoch);
            var features = new float[rows.Length * featureCount];
            var labels = new long[rows.Length];
            _columns.ReadRows(rows, _rowCount, features, labels);

            double lossTotal = 0;
            for (int step = 0; step < plan.StepsPerEpoch; step++)
            {
                var (start, count) = plan.MicroBatch(step, rows.Length);
                int globalRows = plan.GlobalRowsInStep(step);
                float loss = engine.Step(() => count == 0 ? null : LossSum(model, features, labels, start, count, featureCount), globalRows);
                lossTotal += loss * globalRows;
            }
            if (communicator.Rank == 0)
                EpochCompleted?.Invoke(epoch + 1, lossTotal / _rowCount);
        }
        model.eval();
    }

    private static Tensor LossSum(MlpClassifier model, float[] features, long[] labels, int start, int rows, int featureCount)
    {
        var x = tensor(features.AsSpan(start * featureCount, rows * featureCount).ToArray(), new long[] { rows, featureCount });
        var y = tensor(labels.AsSpan(start, rows).ToArray(), new long[] { rows });
        return nn.functional.cross_entropy(model.forward(x), y, reduction: nn.Reduction.Sum);
    }
}
