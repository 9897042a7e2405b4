namespace Microsoft.ML.Zero.Data;

/// <summary>
/// Which rows a rank trains on, in which order, for each epoch. Every rank builds the same seeded permutation of all
/// row positions and keeps positions i with i % WorldSize == Rank, so the ranks' micro-batches of step s together
/// form exactly the global batch a single rank would take at step s. All ranks agree on the step count, so a rank
/// whose shard runs out early still joins every collective (with an empty micro-batch).
/// </summary>
internal sealed class ShardPlan
{
    public ShardPlan(long rowCount, int worldSize, int rank, int microBatchSize, int seed)
    {
        if (rowCount > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(rowCount), rowCount, $"At most {int.MaxValue} training rows are supported.");
        RowCount = (int)rowCount;
        WorldSize = worldSize;
        Rank = rank;
        MicroBatchSize = microBatchSize;
        Seed = seed;
    }

    public int RowCount { get; }

    public int WorldSize { get; }

    public int Rank { get; }

    public int MicroBatchSize { get; }

    public int Seed { get; }

    public int GlobalBatchSize => MicroBatchSize * WorldSize;

    public int StepsPerEpoch => (RowCount + GlobalBatchSize - 1) / GlobalBatchSize;

    /// <summary>Rows in step <paramref name="step"/> over all ranks: the global batch, or what is left at the end.</summary>
    public int GlobalRowsInStep(int step) => Math.Min(GlobalBatchSize, RowCount - step * GlobalBatchSize);

    /// <summary>This rank's row positions for <paramref name="epoch"/>, in training order.</summary>
    public int[] RowsForEpoch(int epoch)
    {
        int[] permutation = Permutation(epoch);
        int count = RowCount / WorldSize + (Rank < RowCount % WorldSize ? 1 : 0);
        var rows = new int[count];
        for (int i = 0; i < count; i++)
            rows[i] = permutation[i * WorldSize + Rank];
        return rows;
    }

    /// <summary>This rank's rows of step <paramref name="step"/>: a slice of <see cref="RowsForEpoch"/>, possibly empty.</summary>
    public (int Start, int Count) MicroBatch(int step, int shardLength)
    {
        int start = Math.Min(shardLength, step * MicroBatchSize);
        return (start, Math.Min(shardLength - start, MicroBatchSize));
    }

    private int[] Permutation(int epoch)
    {
        var order = new int[RowCount];
        for (int i = 0; i < order.Length; i++)
            order[i] = i;
        // System.Random with a seed is the same sequence on every platform and process: ranks agree on the order.
        new Random(unchecked(Seed * 100_003 + epoch)).Shuffle(order);
        return order;
    }
}
