using System.Diagnostics;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Distributed;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Training;

/// <summary>
/// One rank's epochs: read the rank's shard, then one engine step per window of <c>GradientAccumulationSteps</c>
/// micro-batches. The last window of an epoch may be shorter; every rank agrees on it, since the windows come from the
/// shared shard plan.
/// </summary>
internal sealed class ShardedTraining
{
    private readonly long _rowCount;
    private readonly BatchSizes _batch;
    private readonly int _epochs;
    private readonly int _seed;
    private readonly EngineSettings _settings;

    public ShardedTraining(long rowCount, BatchSizes batch, int epochs, int seed, EngineSettings settings)
    {
        _rowCount = rowCount;
        _batch = batch;
        _epochs = epochs;
        _seed = seed;
        _settings = settings;
    }

    /// <summary>Called by rank 0 after each epoch with the epoch number (from 1) and its mean training loss.</summary>
    public Action<int, double>? EpochCompleted { get; init; }

    /// <summary>Rank 0's progress lines, every <see cref="StepsPerPrint"/> optimizer steps.</summary>
    public Action<string>? Log { get; init; }

    public int StepsPerPrint { get; init; } = 10;

    /// <summary>Each rank's input is its own shard, rather than the same data split by position.</summary>
    public bool InputPerRank { get; init; }

    /// <summary>Adds the forward/backward/all-reduce/step times to each progress line.</summary>
    public bool WallClockBreakdown { get; init; }

    /// <summary>Trains <paramref name="model"/>; <paramref name="readEpoch"/> reads the listed rows (positions in the data).</summary>
    public void Run(nn.Module model, ICommunicator communicator, Func<int[], IEpochShard> readEpoch)
    {
        var plan = AgreeOnPlan(communicator);
        int accumulation = _batch.GradientAccumulationSteps;
        int stepsPerEpoch = (plan.StepsPerEpoch + accumulation - 1) / accumulation;
        var settings = _settings with { Schedule = _settings.Schedule?.Resolve((long)stepsPerEpoch * _epochs) };
        bool reports = communicator.Rank == 0;
        if (reports)
            Log?.Invoke($"{plan.RowCount} training rows over {plan.WorldSize} rank(s)" +
                (InputPerRank ? $" (shards of {string.Join(", ", plan.ShardSizes)} rows)" : "") + $": {stepsPerEpoch} optimizer steps per epoch.");
        model.train();
        using var engine = new DataParallelEngine(model, communicator, settings);
        var sincePrint = Stopwatch.StartNew();
        long rowsSincePrint = 0;
        for (int epoch = 0; epoch < _epochs; epoch++)
        {
            var shard = readEpoch(plan.RowsForEpoch(epoch));
            double lossTotal = 0;
            for (int step = 0; step < stepsPerEpoch; step++)
            {
                int first = step * accumulation, last = Math.Min(first + accumulation, plan.StepsPerEpoch);
                var microBatches = new List<Func<Tensor?>>();
                int globalRows = 0;
                for (int micro = first; micro < last; micro++)
                {
                    var (start, count) = plan.MicroBatch(micro, shard.Count);
                    microBatches.Add(() => count == 0 ? null : shard.LossSum(start, count));
                    globalRows += plan.GlobalRowsInStep(micro);
                }
                var result = engine.Step(microBatches, globalRows);
                lossTotal += result.Loss * globalRows;
                rowsSincePrint += globalRows;
                long taken = engine.GlobalStep + engine.SkippedSteps;
                if (reports && taken % StepsPerPrint == 0)
                {
                    Log?.Invoke(Progress(epoch, step, stepsPerEpoch, result, engine, rowsSincePrint / sincePrint.Elapsed.TotalSeconds));
                    engine.Timings.Reset();
                    sincePrint.Restart();
                    rowsSincePrint = 0;
                }
            }
            if (reports)
                EpochCompleted?.Invoke(epoch + 1, lossTotal / plan.RowCount);
        }
        engine.RestoreFullPrecision();
        engine.VerifyReplicasMatch();
        model.eval();
    }

    // Every rank learns every rank's row count before the first step, so all derive the same steps and batch sizes.
    private ShardPlan AgreeOnPlan(ICommunicator communicator)
    {
        var counts = communicator.AllGather(_rowCount).Select(c => (long)c).ToArray();
        if (InputPerRank)
            return ShardPlan.PerRank(counts, communicator.Rank, _batch.MicroBatchPerRank, _seed);
        int differing = Array.FindIndex(counts, c => c != counts[0]);
        if (differing > 0)
            throw new InvalidOperationException(
                $"Rank {differing} reads {counts[differing]} training rows but rank 0 reads {counts[0]}: with Sharding = SplitRows every rank must read " +
                "the same data. Set Sharding = InputPerRank when each rank's input holds only its own rows.");
        return new ShardPlan(_rowCount, communicator.WorldSize, communicator.Rank, _batch.MicroBatchPerRank, _seed);
    }

    private string Progress(int epoch, int step, int stepsPerEpoch, StepResult result, DataParallelEngine engine, double rowsPerSecond)
    {
        string line = $"Epoch {epoch + 1}/{_epochs}, step {step + 1}/{stepsPerEpoch}: loss {result.Loss:F4}, lr {result.LearningRate:G4}";
        if (_settings.Precision == ZeroPrecision.Fp16)
            line += $", loss scale {engine.LossScale:G}, skipped steps {engine.SkippedSteps}";
        line += $", {rowsPerSecond:F1} samples/s.";
        return WallClockBreakdown ? $"{line} Time: {engine.Timings}." : line;
    }
}
