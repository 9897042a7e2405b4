using static TorchSharp.torch;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// Ranks whose runs differ (as separate processes can: a seed per rank, labels keyed per process, a node-local
/// checkpoint folder) fail before the first step, naming the setting and the ranks. In-process ranks stand in for them.
/// </summary>
[TestClass]
public sealed class RunAgreementTests
{
    private static ZeroRankFailedException TrainDiffering(Action<int, ShardedTrainingSettings> differ) =>
        Assert.ThrowsExactly<ZeroRankFailedException>(() => TinyShardedRun.Run(communicator =>
        {
            var settings = new ShardedTrainingSettings();
            differ(communicator.Rank, settings);
            return new ShardedTraining(TinyShardedRun.Rows, new BatchSizes(16, 8, 1), 2, settings.Seed, TinyShardedRun.Settings)
            {
                LabelValues = settings.LabelValues,
                Checkpoints = settings.Checkpoints,
            };
        }, TimeSpan.FromSeconds(20)));

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
