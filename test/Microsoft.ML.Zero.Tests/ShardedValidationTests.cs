using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.Models;
using Microsoft.ML.Zero.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>Validation between epochs is scored by every rank on its share, so it may take longer than the communication timeout.</summary>
[TestClass]
public sealed class ShardedValidationTests
{
    private static readonly MlpShape Shape = new(4, new[] { 8 }, 3, MlpActivation.Relu, 0);

    [TestMethod]
    public void AValidationLongerThanTheCommunicationTimeoutTrainsOnAndSumsEveryRanksCounts()
    {
        TorchRuntimeForTests.Load();
        manual_seed(1);
        var replicas = Enumerable.Range(0, 2).Select(rank => new MlpClassifier(Shape, new Generator((ulong)rank))).ToArray();
        var accuracies = new List<double?>();
        var monitor = new RecordingMonitor();
        var scored = new int[2];
        try
        {
            InProcessLauncher.Run(2, TimeSpan.FromSeconds(2), communicator =>
            {
                var training = new ShardedTraining(40, new BatchSizes(16, 8, 1), 2, 5, EngineSettings.Fp32(new OptimizerSettings(ZeroOptimizer.AdamW, 1e-3, 0.9, 0.999, 1e-8, 0, 0)))
                {
                    Monitors = new[] { monitor },
                    // Each rank's share takes 3 s, longer than the 2 s timeout; rank r gets 10 + r of its 20 + r rows right.
                    ValidationCounts = (model, rank, worldSize) =>
                    {
                        Interlocked.Increment(ref scored[rank]);
                        Thread.Sleep(TimeSpan.FromSeconds(3));
                        return (10 + rank, 20 + rank);
                    },
                };
                var model = replicas[communicator.Rank];
                training.Run(model, communicator, rows => new TabularEpochShard(model, new MlpModelFactory(Shape),
                    rows.SelectMany(r => new[] { r / 40f, r % 7 / 7f, r % 3, 1f }).ToArray(), rows.Select(r => (long)(r % 3)).ToArray(), Shape.InputSize));
                return true;
            });
        }
        finally
        {
            foreach (var replica in replicas)
                replica.Dispose();
        }
        CollectionAssert.AreEqual(new[] { 2, 2 }, scored, "every rank scores its share after each of the 2 epochs");
        CollectionAssert.AreEqual(new double?[] { 21.0 / 41, 21.0 / 41 }, monitor.Epochs.Select(e => e.ValidationAccuracy).ToArray());
    }
}
