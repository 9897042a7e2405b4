using static TorchSharp.torch;
using Microsoft.ML.Zero.Loop;
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
        var scored = new int[2];
        TinyShardedRun.Run(communicator => new ShardedTraining(TinyShardedRun.Rows, new BatchSizes(16, 8, 1), 2, 5, TinyShardedRun.Settings)
        {
            Monitors = new[] { monitor },
            // Each rank's share takes 3 s, longer than the 2 s timeout; rank r gets 10 + r of its 20 + r rows right.
            ValidationCounts = (model, rank, worldSize) =>
            {
                Interlocked.Increment(ref scored[rank]);
                Thread.Sleep(TimeSpan.FromSeconds(3));
                return (10 + rank, 20 + rank);
            },
        }, TimeSpan.FromSeconds(2));
        CollectionAssert.AreEqual(new[] { 2, 2 }, scored, "every rank scores its share after each of the 2 epochs");
        CollectionAssert.AreEqual(new double?[] { 21.0 / 41, 21.0 / 41 }, monitor.Epochs.Select(e => e.ValidationAccuracy).ToArray());
    }
}
