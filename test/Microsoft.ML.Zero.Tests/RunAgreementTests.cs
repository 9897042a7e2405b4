using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.Models;
using Microsoft.ML.Zero.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// Ranks whose runs differ (as separate processes can: a seed per rank, labels keyed per process, a node-local
/// checkpoint folder) fail before the first step, naming the setting and the ranks. In-process ranks stand in for them.
/// </summary>
[TestClass]
public sealed class RunAgreementTests
{
    private static readonly MlpShape Shape = new(4, new[] { 8 }, 3, MlpActivation.Relu, 0);
    private const int Rows = 40;

    private static ZeroRankFailedException TrainDiffering(Action<int, ShardedTrainingSettings> differ)
    {
        TorchRuntimeForTests.Load();
        manual_seed(1);
        var replicas = Enumerable.Range(0, 2).Select(rank => new MlpClassifier(Shape, new Generator((ulong)rank))).ToArray();
        try
        {
            return Assert.ThrowsExactly<ZeroRankFailedException>(() => InProcessLauncher.Run(2, TimeSpan.FromSeconds(20), communicator =>
            {
                var settings = new ShardedTrainingSettings();
                differ(communicator.Rank, settings);
                var training = new ShardedTraining(Rows, new BatchSizes(16, 8, 1), 2, settings.Seed, EngineSettings.Fp32(new OptimizerSettings(ZeroOptimizer.AdamW, 1e-3, 0.9, 0.999, 1e-8, 0, 0)))
                {
                    LabelValues = settings.LabelValues,
                    Checkpoints = settings.Checkpoints,
                };
                var model = replicas[communicator.Rank];
                training.Run(model, communicator, rows => new TabularEpochShard(model, new MlpModelFactory(Shape),
                    rows.SelectMany(r => new[] { r / 40f, r % 7 / 7f, r % 3, 1f }).ToArray(), rows.Select(r => (long)(r % 3)).ToArray(), Shape.InputSize));
                return true;
            }));
        }
        finally
        {
            foreach (var replica in replicas)
                replica.Dispose();
        }
    }

    internal sealed class ShardedTrainingSettings
    {
        public int Seed = 5;
        public string LabelValues = "setosa|versicolor|virginica";
        public CheckpointStore? Checkpoints;
    }

    [TestMethod]
    public void ASeedThatDiffersPerRankIsRefusedNamingTheRanks()
    {
        var failure = TrainDiffering((rank, settings) => settings.Seed = 5 + rank);
        StringAssert.Contains(failure.Message, "The ranks differ in Seed: rank(s) 1 differ from rank 0");
    }

    [TestMethod]
    public void LabelKeysWithOtherMeaningsOnAnotherRankAreRefused()
    {
        var failure = TrainDiffering((rank, settings) => settings.LabelValues = rank == 0 ? "setosa|versicolor|virginica" : "versicolor|setosa|virginica");
        StringAssert.Contains(failure.Message, "The ranks differ in the label's values: rank(s) 1 differ from rank 0");
    }

    [TestMethod]
    public void OneRankResumingWhileAnotherStartsFreshIsRefused()
    {
        using var folder = new TempFolder("zero-agree-");
        Directory.CreateDirectory(folder.Combine("global_step4"));
        File.WriteAllText(folder.Combine("global_step4", "state.json"), "{}");
        File.WriteAllText(folder.Combine("latest"), "global_step4");
        var failure = TrainDiffering((rank, settings) => settings.Checkpoints = rank == 0 ? new CheckpointStore(folder.Path, 2) : null);
        StringAssert.Contains(failure.Message, "The ranks differ in the checkpoint resumed from: rank(s) 1 differ from rank 0");
    }
}
