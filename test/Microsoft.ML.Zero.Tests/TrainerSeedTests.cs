namespace Microsoft.ML.Zero.Tests;

/// <summary>A trainer whose Seed is unset takes the MLContext's seed, as ML.NET's trainers do; a set Seed wins.</summary>
[TestClass]
public sealed class TrainerSeedTests
{
    private static readonly IDataView Data = IrisFixtures.Prepared(new MLContext(seed: 0));

    private static float[] TrainedWeights(MLContext mlContext, int? seed = null)
    {
        var options = new ZeroTrainerOptions { WorldSize = 1, BatchSize = 16, MaxEpoch = 1, HiddenLayerSizes = new[] { 8 }, Dropout = 0.2f, Seed = seed };
        var replicas = mlContext.Zero().Trainer(options).TrainReplicas(Data, out _);
        try
        {
            return IrisFixtures.Weights(replicas[0]);
        }
        finally
        {
            foreach (var replica in replicas)
                replica.Dispose();
        }
    }

    [TestMethod]
    public void AnUnsetSeedTakesTheContextsSeed()
    {
        var one = TrainedWeights(new MLContext(seed: 1));
        CollectionAssert.AreEqual(one, TrainedWeights(new MLContext(seed: 1)), "two fits under MLContext(seed: 1) differ");
        CollectionAssert.AreNotEqual(one, TrainedWeights(new MLContext(seed: 2)), "MLContext(seed: 2) trained the same weights as seed 1");
        CollectionAssert.AreEqual(one, TrainedWeights(new MLContext(seed: 7), seed: 1), "Seed = 1 under another context's seed differs from the context seed 1");
    }

    [TestMethod]
    public void ASetSeedWinsOverTheContextsSeed()
    {
        CollectionAssert.AreEqual(TrainedWeights(new MLContext(seed: 2), seed: 5), TrainedWeights(new MLContext(seed: 3), seed: 5));
        CollectionAssert.AreNotEqual(TrainedWeights(new MLContext(seed: 2)), TrainedWeights(new MLContext(seed: 2), seed: 5));
    }

    [TestMethod]
    public void WithoutAnySeedTheRunIsSeededWithZero()
    {
        CollectionAssert.AreEqual(TrainedWeights(new MLContext(seed: 0)), TrainedWeights(new MLContext()));
    }
}
