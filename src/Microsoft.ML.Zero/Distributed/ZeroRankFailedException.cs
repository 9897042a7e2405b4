namespace Microsoft.ML.Zero.Distributed;

/// <summary>A rank's work threw; the message names the rank and carries the original reason.</summary>
public sealed class ZeroRankFailedException : Exception
{
    /// <summary>Wraps the failure <paramref name="innerException"/> of <paramref name="rank"/>.</summary>
    public ZeroRankFailedException(int rank, int worldSize, Exception innerException)
        : this(rank, worldSize, innerException, Array.Empty<int>())
    {
    }

    internal ZeroRankFailedException(int rank, int worldSize, Exception innerException, IReadOnlyList<int> stillRunning)
        : base($"Rank {rank} of {worldSize} failed: {innerException.Message}" + (stillRunning.Count == 0 ? "" :
            $" Rank(s) {string.Join(", ", stillRunning)} still running outside any collective when the communication timeout ran out were left behind."),
            innerException)
    {
        Rank = rank;
        WorldSize = worldSize;
    }

    /// <summary>The rank that failed.</summary>
    public int Rank { get; }

    /// <summary>The number of ranks in the job.</summary>
    public int WorldSize { get; }
}
