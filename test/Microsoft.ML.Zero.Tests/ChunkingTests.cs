using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.Tests;

[TestClass]
public sealed class ChunkingTests
{
    [TestMethod]
    public void ChunksCoverTheRangeInOrderEachStartingOnTheAlignment()
    {
        foreach (int length in new[] { 0, 1, 15, 16, 17, 50, 1000, 1_000_003 })
            foreach (int parts in new[] { 1, 2, 3, 4, 7 })
                foreach (int alignment in new[] { 1, 16, 32 })
                {
                    int next = 0;
                    for (int part = 0; part < parts; part++)
                    {
                        var (start, count) = Chunking.Chunk(length, parts, part, alignment);
                        string where = $"length {length}, {parts} parts, alignment {alignment}, part {part}";
                        Assert.AreEqual(next, start, where);
                        Assert.IsTrue(count >= 0, where);
                        Assert.IsTrue(start % alignment == 0 || start == length, where);
                        next = start + count;
                    }
                    Assert.AreEqual(length, next, $"length {length}, {parts} parts, alignment {alignment}: the chunks do not end at the range's end");
                }
    }
}
