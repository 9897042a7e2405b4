using System.Numerics;

namespace Microsoft.ML.Zero.Distributed;

/// <summary>64-bit FNV-1a: the hash ranks compare to find that they hold the same weights or run on the same machine.</summary>
internal static class Fnv1a
{
    public static ulong Hash<T>(ReadOnlySpan<T> values) where T : IBinaryInteger<T>
    {
        ulong hash = 14695981039346656037;
        foreach (var value in values)
            hash = (hash ^ ulong.CreateTruncating(value)) * 1099511628211;
        return hash;
    }
}
