namespace Microsoft.ML.Zero.Data;

/// <summary>
/// Which rows a rank trains on, in which order, for each epoch, and how the ranks' micro-batches line up. Rank r holds
/// ShardSizes[r] rows; its micro-batch k is rows [k x MicroBatchSize, (k + 1) x MicroBatchSize) of its epoch order.
/// Every rank knows every shard size, so all agree on the steps per epoch (the longest shard's) and on the global rows
/// of each step: a rank whose shard ran out still joins every collective, with an empty micro-batch.
/// </summary>
internal sealed class ShardPlan
{
    private readonly bool _splitsOneDataSet;

    /// <summary>
    /// Every rank reads the same <paramref name="rowCount"/> rows: each builds the same seeded permutation and keeps
    /// positions i with i % worldSize == rank, so the ranks' micro-batches of step s together form exactly the batch a
    /// single rank would take at step s.
    /// </summary>
    public ShardPlan(long rowCount, int worldSize, int rank, int microBatchSize, int seed)
        : this(Enumerable.Range(0, worldSize).Select(r => rowCount / worldSize + (r < rowCount % worldSize ? 1 : 0)).ToArray(), rank, microBatchSize, seed, true)
    {
    }

    private ShardPlan(long[] shardSizes, int rank, int microBatchSize, int seed, bool splitsOneDataSet)
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
    }

    /// <summary>Each rank reads its own data set of <paramref name="shardSizes"/>[rank] rows, shuffled within the rank.</summary>
    public static ShardPlan PerRank(long[] shardSizes, int rank, int microBatchSize, int seed) => new(shardSizes, rank, microBatchSize, seed, false);

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
    public int[] RowsForEpoch(int epoch)
    {
        if (!_splitsOneDataSet)
            return Permutation(ShardSizes[Rank], epoch, Rank);
        int[] permutation = Permutation(RowCount, epoch, 0);
        var rows = new int[ShardSizes[Rank]];
        for (int i = 0; i < rows.Length; i++)
            rows[i] = permutation[i * WorldSize + Rank];
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
        // System.Random with a seed is the same sequence on every platform and process: ranks agree on the order.
        new Random(unchecked(Seed * 100_003 + epoch + stream * 7_919_993)).Shuffle(order);
        return order;
    }
}
