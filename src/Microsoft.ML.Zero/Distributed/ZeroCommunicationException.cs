namespace Microsoft.ML.Zero.Distributed;

/// <summary>A collective could not complete: a peer failed, left, or did not arrive in time.</summary>
public sealed class ZeroCommunicationException : Exception
{
    /// <summary>Creates the exception for <paramref name="rank"/>.</summary>
    public ZeroCommunicationException(int rank, string message, Exception? innerException = null)
        : base(message, innerException) => Rank = rank;

    /// <summary>The rank that observed the failure.</summary>
    public int Rank { get; }
}
