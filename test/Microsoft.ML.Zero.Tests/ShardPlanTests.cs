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

    [TestMethod]
    public void ShardsOfDifferentSizesAgreeOnStepsAndGlobalRows()
    {
        long[] sizes = { 75, 30 };   // 105 rows, odd; the shards differ by 45 rows, more than 5 micro-batches of 8
        var plans = Enumerable.Range(0, 2).Select(rank => ShardPlan.PerRank(sizes, rank, 8, seed: 3)).ToArray();
        Assert.AreEqual(10, plans[0].StepsPerEpoch);
        Assert.AreEqual(10, plans[1].StepsPerEpoch, "the short shard runs as many steps as the long one");
        Assert.AreEqual(105, Enumerable.Range(0, 10).Sum(plans[0].GlobalRowsInStep));
        for (int step = 0; step < 10; step++)
        {
            var counts = plans.Select((p, rank) => p.MicroBatch(step, (int)sizes[rank]).Count).ToArray();
            Assert.AreEqual(counts.Sum(), plans[1].GlobalRowsInStep(step), $"step {step}");
        }
        Assert.AreEqual(0, plans[1].MicroBatch(4, 30).Count, "rank 1 has no rows left at step 4");
        for (int rank = 0; rank < 2; rank++)
        {
            var rows = plans[rank].RowsForEpoch(0);
            CollectionAssert.AreEquivalent(Enumerable.Range(0, (int)sizes[rank]).ToArray(), rows, "a shard's order is a permutation of its own rows");
            CollectionAssert.AreNotEqual(rows, plans[rank].RowsForEpoch(1));
        }
    }
}
