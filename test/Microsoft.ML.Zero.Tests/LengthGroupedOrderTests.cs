using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Models.Bert;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// Grouping batches by length (group_by_length): the order is a permutation made of sorted cuts of seeded windows, the
/// ranks' micro-batches of a step come from one length group and together are the single-rank batch, and on the UCI
/// sentences it pads a fraction of what shuffled batches pad.
/// </summary>
[TestClass]
public sealed class LengthGroupedOrderTests
{
    private static int[] RandomLengths(int rows, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, rows).Select(_ => random.Next(3, 65)).ToArray();
    }

    [TestMethod]
    // 31 full batches and 8 rows left over; windows of 5 batches (a quarter of the batches would be 7).
    [DataRow(1000, 32, 5)]
    // 12 full batches: the window of 50 shrinks to a quarter of them, 3.
    [DataRow(100, 8, 50)]
    // Fewer rows than a batch: one short batch, sorted.
    [DataRow(10, 32, 50)]
    public void BatchesAreSortedCutsOfOneWindowAndTheOrderIsAPermutation(int rows, int batchRows, int windowBatches)
    {
        var lengths = RandomLengths(rows, 1);
        var grouping = new LengthGroupedOrder(lengths, windowBatches);
        var shuffled = Enumerable.Range(0, rows).ToArray();
        new Random(2).Shuffle(shuffled);

        int[] arranged = grouping.Arrange(shuffled, batchRows, new Random(3));

        CollectionAssert.AreEquivalent(shuffled, arranged, "not a permutation of the rows");
        int windowRows = grouping.WindowFor(rows, batchRows) * batchRows;
        Assert.AreEqual(Math.Min(windowBatches, Math.Max(1, rows / batchRows / 4)) * batchRows, windowRows);
        var windowOf = new int[rows];
        for (int i = 0; i < rows; i++)
            windowOf[shuffled[i]] = i / windowRows;
        var batches = arranged.Chunk(batchRows).ToArray();
        Assert.AreEqual((rows + batchRows - 1) / batchRows, batches.Length);
        foreach (var batch in batches)
        {
            Assert.AreEqual(1, batch.Select(row => windowOf[row]).Distinct().Count(), "a batch mixes rows of two windows");
            var batchLengths = batch.Select(row => lengths[row]).ToArray();
            CollectionAssert.AreEqual(batchLengths.OrderDescending().ToArray(), batchLengths, "a batch is not sorted by length");
        }
        // The batches of a window are consecutive cuts of the window sorted by length: their length ranges do not overlap.
        foreach (var window in batches.GroupBy(batch => windowOf[batch[0]]))
        {
            var byLongest = window.OrderByDescending(batch => lengths[batch[0]]).ToArray();
            for (int i = 1; i < byLongest.Length; i++)
                Assert.IsTrue(lengths[byLongest[i - 1][^1]] >= lengths[byLongest[i][0]], $"window {window.Key}: batches {i - 1} and {i} overlap in length");
        }
        if (rows % batchRows != 0)
            Assert.AreEqual(rows % batchRows, batches[^1].Length, "the short batch must come last");
        if (rows / batchRows >= 8)
        {
            var windowsInOrder = batches.Take(rows / batchRows).Select(batch => windowOf[batch[0]]).ToArray();
            CollectionAssert.AreNotEqual(windowsInOrder.Order().ToArray(), windowsInOrder, "the batches were not shuffled across the windows");
        }
    }

    [TestMethod]
    public void TheOrderFollowsTheSeedAndTheEpochAlone()
    {
        var grouping = new LengthGroupedOrder(RandomLengths(500, 4), 5);
        ShardPlan Plan(int seed) => new(500, 2, 0, 8, seed, grouping, accumulationSteps: 2);

        CollectionAssert.AreEqual(Plan(5).RowsForEpoch(1), Plan(5).RowsForEpoch(1), "the same seed and epoch gave another order");
        CollectionAssert.AreNotEqual(Plan(5).RowsForEpoch(0), Plan(5).RowsForEpoch(1), "two epochs had the same order");
        CollectionAssert.AreNotEqual(Plan(5).RowsForEpoch(0), Plan(6).RowsForEpoch(0), "two seeds had the same order");
        CollectionAssert.AreNotEqual(new ShardPlan(500, 2, 0, 8, 5, null, 2).RowsForEpoch(0), Plan(5).RowsForEpoch(0), "grouping changed nothing");
    }

    [TestMethod]
    // 203 rows in global batches of 16 (12 full, 11 rows left over): 2 ranks x 4 x 2, 4 ranks x 2 x 2, 2 ranks x 8 x 1.
    [DataRow(2, 4, 2)]
    [DataRow(4, 2, 2)]
    [DataRow(2, 8, 1)]
    public void RanksTakeTheSingleRankRowsAtEveryStepAndEachMicroStepFromOneLengthGroup(int worldSize, int micro, int accumulation)
    {
        const int Rows = 203;
        var grouping = new LengthGroupedOrder(RandomLengths(Rows, 8), 50);
        int globalBatch = worldSize * micro * accumulation;
        var ranks = Enumerable.Range(0, worldSize).Select(rank => new ShardPlan(Rows, worldSize, rank, micro, 11, grouping, accumulation)).ToArray();
        // The same global batch split other ways: one rank with the ranks' micro-batches together, and one with all of it accumulated.
        var wide = new ShardPlan(Rows, 1, 0, micro * worldSize, 11, grouping, accumulation);
        var accumulated = new ShardPlan(Rows, 1, 0, micro, 11, grouping, accumulation * worldSize);
        for (int epoch = 0; epoch < 2; epoch++)
        {
            var shards = ranks.Select(plan => plan.RowsForEpoch(epoch)).ToArray();
            int[] single = wide.RowsForEpoch(epoch);
            int[] singleAccumulated = accumulated.RowsForEpoch(epoch);
            int steps = (Rows + globalBatch - 1) / globalBatch;
            for (int step = 0; step < steps; step++)
            {
                var stepRows = new List<int>();
                for (int microStep = step * accumulation; microStep < (step + 1) * accumulation; microStep++)
                {
                    var microRows = ranks.SelectMany((plan, rank) =>
                    {
                        var (start, count) = plan.MicroBatch(microStep, shards[rank].Length);
                        return shards[rank].Skip(start).Take(count);
                    }).ToArray();
                    // The length group of a row is its global batch in the single rank's order.
                    var groups = microRows.Select(row => Array.IndexOf(single, row) / globalBatch).Distinct().ToArray();
                    Assert.IsTrue(groups.Length <= 1, $"epoch {epoch}, micro-step {microStep}: the ranks' rows come from groups {string.Join(", ", groups)}");
                    stepRows.AddRange(microRows);
                }
                var expected = single.Skip(step * globalBatch).Take(globalBatch).Order().ToArray();
                CollectionAssert.AreEqual(expected, stepRows.Order().ToArray(), $"epoch {epoch}, step {step}: not the single rank's rows");
                CollectionAssert.AreEqual(expected, singleAccumulated.Skip(step * globalBatch).Take(globalBatch).Order().ToArray(),
                    $"epoch {epoch}, step {step}: accumulating the global batch on one rank took other rows");
            }
        }
    }

    [TestMethod]
    public void PerRankInputsAreGroupedWithinEachRank()
    {
        long[] sizes = { 75, 30 };
        var lengths = sizes.Select((size, rank) => RandomLengths((int)size, rank)).ToArray();
        for (int rank = 0; rank < 2; rank++)
        {
            var plan = ShardPlan.PerRank(sizes, rank, 4, 3, new LengthGroupedOrder(lengths[rank], 50), accumulationSteps: 2);
            int[] rows = plan.RowsForEpoch(0);
            CollectionAssert.AreEquivalent(Enumerable.Range(0, (int)sizes[rank]).ToArray(), rows, "a shard's order is a permutation of its own rows");
            Assert.AreEqual(8, plan.GroupRows, "a rank's group is its rows of one step");
            foreach (var step in rows.Chunk(8))
            {
                var stepLengths = step.Select(row => lengths[rank][row]).ToArray();
                CollectionAssert.AreEqual(stepLengths.OrderDescending().ToArray(), stepLengths, $"rank {rank}: a step's rows are not sorted by length");
            }
        }
        var wrongCount = Assert.ThrowsExactly<ArgumentException>(() => ShardPlan.PerRank(sizes, 1, 4, 3, new LengthGroupedOrder(lengths[0], 50)));
        StringAssert.Contains(wrongCount.Message, "75 lengths for 30 rows");
    }

    [TestMethod]
    public void OnTheUciSentencesGroupingPadsAFractionOfWhatShuffledBatchesPad()
    {
        // The real token counts: MiniLM's WordPiece vocabulary (from its NuGet package), truncated to 64 tokens.
        using var folder = new TempFolder("zero-vocab-");
        var (_, vocab) = MiniLm.ExtractResources(folder.Path);
        var encoder = new BertTextEncoder(File.ReadAllBytes(vocab), lowerCase: true, 64);
        int[] lengths = SentimentData.All().Select(row => encoder.Encode(row.Text, null).Ids.Length).ToArray();
        Assert.AreEqual(3000, lengths.Length);
        var grouping = new LengthGroupedOrder(lengths, 50);

        // 2 ranks x 16, the fine-tune's global batch of 32.
        var grouped = new ShardPlan(lengths.Length, 2, 0, 16, 0, grouping);
        var shuffled = new ShardPlan(lengths.Length, 2, 0, 16, 0);
        double Share(ShardPlan plan) => grouping.PaddingShare(Enumerable.Range(0, 2).Select(rank =>
            new ShardPlan(lengths.Length, 2, rank, 16, 0, plan.Grouping).RowsForEpoch(0)), 16);
        double groupedShare = Share(grouped), shuffledShare = Share(shuffled);
        Console.WriteLine($"padding: {groupedShare:P1} grouped by length, {shuffledShare:P1} shuffled");
        Assert.IsTrue(shuffledShare > 0.3, $"shuffled batches pad {shuffledShare:P1}");
        Assert.IsTrue(groupedShare < shuffledShare / 5, $"grouped {groupedShare:P1} against shuffled {shuffledShare:P1}");
        StringAssert.Contains(grouped.DescribePadding(0), $"padding is {100 * groupedShare:F1}% of the tokens ({100 * shuffledShare:F1}% without grouping by length)");
    }
}
