using System.Diagnostics;

namespace Microsoft.ML.Zero.Distributed;

/// <summary>
/// The short busy-wait ranks on one machine do before sleeping: a peer usually arrives within microseconds, while a
/// sleep and wake-up costs tens of microseconds, more than summing a small buffer. The spin is capped so that a rank
/// waiting for a slow peer soon gives its core back (with overlap_comm the waiting thread shares it with backward).
/// </summary>
internal static class SharedMemorySpin
{
    private static readonly long Limit = Stopwatch.Frequency / 20_000;   // 50 µs

    /// <summary>Spins until <paramref name="done"/> holds or 50 µs pass; returns whether it holds.</summary>
    public static bool Until(Func<bool> done)
    {
        long start = Stopwatch.GetTimestamp();
        while (!done())
        {
            if (Stopwatch.GetTimestamp() - start > Limit)
                return false;
            Thread.SpinWait(16);
        }
        return true;
    }
}
