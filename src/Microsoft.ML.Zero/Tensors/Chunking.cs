namespace Microsoft.ML.Zero.Tensors;

/// <summary>Splits a range of values into contiguous chunks, one per worker: the ranks of an all-reduce, or threads.</summary>
internal static class Chunking
{
    /// <summary>
    /// Chunk <paramref name="part"/> of <paramref name="length"/> values split into <paramref name="parts"/>: as equal as
    /// can be while each is a whole multiple of <paramref name="alignment"/> values from the range's start (so workers
    /// seldom write the same cache line). The last chunks may be shorter, or empty.
    /// </summary>
    public static (int Start, int Count) Chunk(int length, int parts, int part, int alignment)
    {
        long size = (length + parts - 1L) / parts;
        size = (size + alignment - 1) / alignment * alignment;
        long start = Math.Min(length, part * size);
        return ((int)start, (int)Math.Min(size, length - start));
    }
}
