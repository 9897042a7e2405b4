using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>overlap_comm through the engine's public API when a loop calls Backward and Step without Forward.</summary>
[TestClass]
public sealed class OverlapWithoutForwardTests
{
    [TestMethod]
    public void StepsWhoseBackwardCameWithoutForwardReduceEveryBucketAndMatchTheUnoverlappedRun()
    {
        float[][] Train(bool overlap)
        {
            var options = new DeepSpeedOptions { ZeroOptimization = { OverlapCommunication = overlap, ReduceBucketSize = 8 } };
            var weights = new float[2][];
            ZeroEngine.Launch(2, rank =>
            {
                using var model = rank.CreateModel(3, () => nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)));
                using var engine = ZeroEngine.Initialize(model, options);
                for (int step = 0; step < 3; step++)
                {
                    using var scope = NewDisposeScope();
                    var input = arange(8 * 4, dtype: ScalarType.Float32).reshape(8, 4) / 32 * (rank.Rank + step + 1);
                    engine.Backward(model.call(input).square().mean());
                    Assert.IsNotNull(engine.Step(), $"rank {rank.Rank}, step {step}: the boundary took no optimizer step");
                }
                weights[rank.Rank] = IrisFixtures.Weights(model);
            }, communicationTimeout: TimeSpan.FromSeconds(30));
            return weights;
        }

        // Before its fix, the second such step waited forever for buckets that were never queued: bound the wait.
        var overlapped = Task.Run(() => Train(overlap: true));
        Assert.IsTrue(overlapped.Wait(TimeSpan.FromMinutes(2)), "an overlap_comm step without Forward did not finish");
        var plain = Train(overlap: false);
        CollectionAssert.AreEqual(overlapped.Result[0], overlapped.Result[1], "the ranks' replicas differ");
        CollectionAssert.AreEqual(plain[0], overlapped.Result[0], "overlap_comm changed the weights");
    }
}
