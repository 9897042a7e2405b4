namespace Microsoft.ML.Zero;

/// <summary>How the ranks divide the training data.</summary>
public enum ZeroDataSharding
{
    /// <summary>
    /// Every rank reads the same IDataView and keeps its share of a seeded shuffle (rows i with i % ranks == rank): the
    /// steps match one rank with the global batch. The ranks must see the same number of rows.
    /// </summary>
    SplitRows,

    /// <summary>
    /// Each rank's IDataView is already its own shard (e.g. one file per mpirun process), shuffled within the rank.
    /// Shards may differ in size: the ranks agree on the steps per epoch (the longest shard's) before each run, and a
    /// rank whose shard ran out joins the remaining steps with no rows.
    /// </summary>
    InputPerRank,
}
