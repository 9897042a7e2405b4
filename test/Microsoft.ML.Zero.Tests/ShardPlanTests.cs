using Microsoft.ML.Zero.Data;

namespace Microsoft.ML.Zero.Tests;

[TestClass]
public sealed class ShardPlanTests
{
    [TestMethod]
    [DataRow(150, 4, 8)]
    [DataRow(7, 3, 2)]
    [DataRow(5, 4, 4)]
    public void RanksTogetherTakeExactlyTheSingleRankGlobalBatchAtEveryStep(int rows, int worldSize, int micro)
    {
        var single = new ShardPlan(rows, 1, 0, micro * worldSize, seed: 11);
        var ranks = Enumerable.Range(0, worldSize).Select(r => new ShardPlan(rows, worldSize, r, micro, seed: 11)).ToArray();
        for (int epoch = 0; epoch < 3; epoch++)
        {
            int[] all = single.RowsForEpoch(epoch);
            var shards = ranks.Select(p => p.RowsForEpoch(epoch)).ToArray();
            Assert.AreEqual(rows, shards.Sum(s => s.Length));
            foreach (var plan in ranks)
                Assert.AreEqual(single.StepsPerEpoch, plan.StepsPerEpoch);
            for (int step = 0; step < single.StepsPerEpoch; step++)
            {
                var (start, count) = single.MicroBatch(step, all.Length);
                var expected = all.Skip(start).Take(count).Order().ToArray();
                var actual = ranks.SelectMany((plan, r) =>
                {
                    var (s, c) = plan.MicroBatch(step, shards[r].Length);
                    return shards[r].Skip(s).Take(c);
                }).Order().ToArray();
                CollectionAssert.AreEqual(expected, actual, $"epoch {epoch}, step {step}");
                Assert.AreEqual(count, ranks[0].GlobalRowsInStep(step));
            }
        }
    }

    [TestMethod]
    public void EachEpochHasItsOwnOrderAndEverySeedIsRepeatable()
    {
        var plan = new ShardPlan(100, 1, 0, 10, seed: 5);
        CollectionAssert.AreNotEqual(plan.RowsForEpoch(0), plan.RowsForEpoch(1));
        CollectionAssert.AreEqual(plan.RowsForEpoch(1), new ShardPlan(100, 1, 0, 10, seed: 5).RowsForEpoch(1));
        CollectionAssert.AreNotEqual(plan.RowsForEpoch(0), new ShardPlan(100, 1, 0, 10, seed: 6).RowsForEpoch(0));
    }
}
