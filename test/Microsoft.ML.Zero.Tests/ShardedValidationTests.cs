using static TorchSharp.torch;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.Monitoring;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.Tests;

/// <summary>Validation between epochs is scored by every rank on its share, so it may take longer than the communication timeout.</summary>
[TestClass]
public sealed class ShardedValidationTests
{
    [TestMethod]
    public void AValidationLongerThanTheCommunicationTimeoutTrainsOnAndSumsEveryRanksCounts()
    {
        var monitor = new RecordingMonitor();
        var validation = new SlowShares();
        TinyShardedRun.Run(communicator => new ShardedTraining(TinyShardedRun.Rows, new BatchSizes(16, 8, 1), 2, 5, TinyShardedRun.Settings)
        {
            Monitors = new[] { monitor },
            Validation = validation,
        }, TimeSpan.FromSeconds(2));
        CollectionAssert.AreEqual(new[] { 2, 2 }, validation.Scored, "every rank scores its share after each of the 2 epochs");
        CollectionAssert.AreEqual(new[] { 21.0 / 41, 21.0 / 41 }, monitor.Epochs.Select(e => e.Validation![ZeroMetric.Accuracy]).ToArray());
        CollectionAssert.AreEqual(new long[] { 41, 41 }, monitor.Evaluations.Select(e => e.Metrics.Rows).ToArray());
    }

    // Each rank's share takes 3 s, longer than the 2 s timeout; rank r gets 10 + r of its 20 + r rows right.
    private sealed class SlowShares : IValidation
    {
        public int[] Scored { get; } = new int[2];

        public double[] ShareSums(nn.Module model, int rank, int worldSize)
        {
            Interlocked.Increment(ref Scored[rank]);
            Thread.Sleep(TimeSpan.FromSeconds(3));
            var tally = new ClassificationTally(2);
            for (int row = 0; row < 20 + rank; row++)
                tally.Add(0, row < 10 + rank ? 0 : 1, 0.5);
            return tally.Sums;
        }

        public void RequireScorable(nn.Module model)
        {
        }

        public ValidationMetrics Metrics(double[] sums) => ClassificationTally.Metrics(sums, 2);
    }
}
