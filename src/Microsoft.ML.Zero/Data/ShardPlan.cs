namespace Microsoft.ML.Zero.Data;

/// <summary>
/// Which rows a rank trains on, in which order, for each epoch, and how the ranks' micro-batches line up. Rank r holds
/// ShardSizes[r] rows; its micro-batch k is rows [k x MicroBatchSize, (k + 1) x MicroBatchSize) of its epoch order.
/// Every rank knows every shard size, so all agree on the steps per epoch (the longest shard's) and on the global rows
/// of each step: a rank whose shard ran out still joins every collective, with an empty micro-batch. With a
/// <see cref="LengthGroupedOrder"/> the seeded order is regrouped by length into batches of an optimizer step's rows.
/// </summary>
internal sealed class ShardPlan
{
    private readonly bool _splitsOneDataSet;

    /// <summary>
    /// Every rank reads the same <paramref name="rowCount"/> rows: each builds the same seeded permutation and keeps
    /// positions i with i % worldSize == rank, so the ranks' micro-batches of step s together form exactly the batch a
    /// single rank would take at step s. Grouped by length, the groups are global batches (micro-batch x
    /// <paramref name="accumulationSteps"/> x ranks rows), so a micro-step's rows, interleaved over the ranks, come from
    /// one group, and any split of the same global batch over ranks and micro-batches trains on the same rows each step.
    /// </summary>
    public ShardPlan(long rowCount, int worldSize, int rank, int microBatchSize, int seed, LengthGroupedOrder? grouping = null, int accumulationSteps = 1)
        : this(Enumerable.Range(0, worldSize).Select(r => rowCount / worldSize + (r < rowCount % worldSize ? 1 : 0)).ToArray(), rank, microBatchSize, seed, true,
            grouping, accumulationSteps)
    {
    }

    private ShardPlan(long[] shardSizes, int rank, int microBatchSize, int seed, bool splitsOneDataSet, LengthGroupedOrder? grouping, int accumulationSteps)
    {
        long total = shardSizes.Sum();
        if (total > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(shardSizes), total, $"At most {int.MaxValue} training rows are supported.");
        ShardSizes = shardSizes.Select(n => (int)n).ToArray();
        RowCount = (int)total;
        Rank = rank;
        MicroBatchSize = microBatchSize;
        Seed = seed;
        _splitsOneDataSet = splitsOneDataSet;
        Grouping = grouping;
        // An optimizer step's rows: over all ranks when they split one data set, else this rank's (its own rows only).
        GroupRows = (int)Math.Min(int.MaxValue, (long)microBatchSize * accumulationSteps * (splitsOneDataSet ? WorldSize : 1));
        int ownRows = splitsOneDataSet ? RowCount : ShardSizes[rank];
        if (grouping is not null && grouping.RowLengths.Length != ownRows)
            throw new ArgumentException($"Grouping by length needs one length per row: {grouping.RowLengths.Length} lengths for {ownRows} rows.", nameof(grouping));
    }

    /// <summary>
    /// Each rank reads its own data set of <paramref name="shardSizes"/>[rank] rows, shuffled within the rank; grouped by
    /// length, within the rank too (its lengths are all a rank knows), in groups of its micro-batch x accumulation steps.
    /// </summary>
    public static ShardPlan PerRank(long[] shardSizes, int rank, int microBatchSize, int seed, LengthGroupedOrder? grouping = null, int accumulationSteps = 1) =>
        new(shardSizes, rank, microBatchSize, seed, false, grouping, accumulationSteps);

    /// <summary>How rows are grouped by length, or null when batches take the rows as shuffled.</summary>
    public LengthGroupedOrder? Grouping { get; }

    /// <summary>The rows of one length group: an optimizer step's.</summary>
    public int GroupRows { get; }

    public int[] ShardSizes { get; }

    public int RowCount { get; }

    public int WorldSize => ShardSizes.Length;

    public int Rank { get; }

    public int MicroBatchSize { get; }

    public int Seed { get; }

    // Row arithmetic in long: a micro-batch may be as large as int.MaxValue, larger than the shard (one step per epoch).
    public int StepsPerEpoch => ShardSizes.Max(n => (int)((n + (long)MicroBatchSize - 1) / MicroBatchSize));

    /// <summary>Rows in micro-step <paramref name="step"/> over all ranks.</summary>
    public int GlobalRowsInStep(int step) => ShardSizes.Sum(n => (int)Math.Clamp(n - (long)step * MicroBatchSize, 0, MicroBatchSize));

    /// <summary>Rows in the first <paramref name="microSteps"/> micro-steps of an epoch over all ranks.</summary>
    public int RowsInSteps(int microSteps) => ShardSizes.Sum(n => (int)Math.Min(n, (long)microSteps * MicroBatchSize));

    /// <summary>This rank's row positions (in its input) for <paramref name="epoch"/>, in training order.</summary>
    public int[] RowsForEpoch(int epoch) => RowsOfRank(Order(epoch, Grouping is not null), Rank);

    /// <summary>
    /// Rank 0's log line for <paramref name="epoch"/>: padding as a share of the tokens of the epoch's micro-batches (of
    /// every rank with one data set, of this rank's with per-rank inputs), grouped and as the rows came shuffled.
    /// </summary>
    public string DescribePadding(int epoch)
    {
        var grouping = Grouping ?? throw new InvalidOperationException("The rows are not grouped by length.");
        var ranks = _splitsOneDataSet ? Enumerable.Range(0, WorldSize) : new[] { Rank };
        double Share(bool grouped)
        {
            int[] order = Order(epoch, grouped);
            return grouping.PaddingShare(ranks.Select(rank => RowsOfRank(order, rank)), MicroBatchSize);
        }
        return $"Epoch {epoch + 1}: padding is {100 * Share(true):F1}% of the tokens{(_splitsOneDataSet ? "" : $" of rank {Rank}")} " +
            $"({100 * Share(false):F1}% without grouping by length).";
    }

    /// <summary>Rank 0's log line saying how batches are grouped by length.</summary>
    public string DescribeGrouping()
    {
        var grouping = Grouping ?? throw new InvalidOperationException("The rows are not grouped by length.");
        int rows = _splitsOneDataSet ? RowCount : ShardSizes[Rank];
        return $"Batches are grouped by length: each window of {grouping.WindowFor(rows, GroupRows)} batches of {GroupRows} rows " +
            $"(GroupByLengthWindow {grouping.WindowBatches}, at most a quarter of the epoch's batches) is sorted by token count " +
            (_splitsOneDataSet ? "and cut into global batches" : "within each rank and cut into its steps' rows") + ", and the batches are shuffled.";
    }

    // The epoch's order of all rows this rank's plan draws from (every row with one data set, else the rank's own).
    private int[] Order(int epoch, bool grouped)
    {
        int stream = _splitsOneDataSet ? 0 : Rank;
        int[] shuffled = Permutation(_splitsOneDataSet ? RowCount : ShardSizes[Rank], epoch, stream);
        // The batch shuffle draws from a stream of its own (~stream is negative, no rank's), so the rows' shuffle stays as without grouping.
        return grouped ? Grouping!.Arrange(shuffled, GroupRows, Seeded(epoch, ~stream)) : shuffled;
    }

    private int[] RowsOfRank(int[] order, int rank)
    {
        if (!_splitsOneDataSet)
            return order;
        var rows = new int[ShardSizes[rank]];
        for (int i = 0; i < rows.Length; i++)
            rows[i] = order[i * WorldSize + rank];
        return rows;
    }

    /// <summary>This rank's rows of micro-step <paramref name="step"/>: a slice of <see cref="RowsForEpoch"/>, possibly empty.</summary>
    public (int Start, int Count) MicroBatch(int step, int shardLength)
    {
        int start = (int)Math.Min(shardLength, (long)step * MicroBatchSize);
        return (start, Math.Min(shardLength - start, MicroBatchSize));
    }

    private int[] Permutation(int count, int epoch, int stream)
    {
        var order = new int[count];
        for (int i = 0; i < order.Length; i++)
            order[i] = i;
        Seeded(epoch, stream).Shuffle(order);
        return order;
    }

    // System.Random with a seed is the same sequence on every platform and process: ranks agree on the order.
    private Random Seeded(int epoch, int stream) => new(unchecked(Seed * 100_003 + epoch + stream * 7_919_993));
}
