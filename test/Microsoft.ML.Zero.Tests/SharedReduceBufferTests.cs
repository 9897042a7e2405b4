using System.Diagnostics;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Distributed.Mpi;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// The shared-memory sum that MPI ranks on one machine use, run by threads standing in for the processes: each maps
/// every rank's /dev/shm file, as the processes do, and waits at the barriers kept in those files.
/// </summary>
[TestClass]
public sealed class SharedReduceBufferTests
{
    // Not a multiple of any world size or vector width: the last chunk is short and ends in a scalar tail.
    private const int Count = 40_001;

    // Maps one buffer per rank (files removed once mapped), runs body on one thread per rank, and unmaps. The body gets
    // the guard its all-reduces wait under; guards counts how often each rank took it.
    private static T[] OnRanks<T>(int worldSize, Func<int, SharedReduceBuffer, Func<IDisposable>, T> body) => OnRanks(worldSize, body, out _);

    private static T[] OnRanks<T>(int worldSize, Func<int, SharedReduceBuffer, Func<IDisposable>, T> body, out int[] guards)
    {
        TorchRuntimeForTests.Load();
        long tag = Random.Shared.NextInt64(1, 1L << 40);
        var paths = Enumerable.Range(0, worldSize).Select(rank => SharedReduceBuffer.FilePath(tag, rank)).ToArray();
        foreach (string path in paths)
            SharedReduceBuffer.CreateFile(path, Count);
        var buffers = Enumerable.Range(0, worldSize).Select(rank => SharedReduceBuffer.Map(rank, Count, paths)).ToArray();
        foreach (string path in paths)
            File.Delete(path);
        try
        {
            var results = new T[worldSize];
            var taken = new int[worldSize];
            var errors = new Exception?[worldSize];
            var threads = Enumerable.Range(0, worldSize).Select(rank => new Thread(() =>
            {
                try
                {
                    results[rank] = body(rank, buffers[rank], () =>
                    {
                        taken[rank]++;
                        return new CancellationTokenSource();
                    });
                }
                catch (Exception e)
                {
                    errors[rank] = e;
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            if (errors.FirstOrDefault(e => e is not null) is { } error)
                throw error;
            guards = taken;
            return results;
        }
        finally
        {
            foreach (var buffer in buffers)
                buffer.Dispose();
            Assert.IsEmpty(Directory.GetFiles(SharedReduceBuffer.Folder, $"{SharedReduceBuffer.FilePrefix}{tag:x}.*"));
        }
    }

    private static float Input(int rank, int i) => (float)Math.Sin(i * 0.37 + rank) * (rank + 1);

    [TestMethod]
    [DataRow(2)]
    [DataRow(3)]
    [DataRow(4)]
    public void RangesAreSummedInRankOrderAndEveryRankGetsTheSameBits(int worldSize)
    {
        // Whole buffer, a short range at an odd offset, one value at the end, and a range shorter than the world size.
        var ranges = new (int Offset, int Length)[] { (0, Count), (5, 37), (Count - 1, 1), (100, 2) };
        var results = OnRanks(worldSize, (rank, shared, guard) =>
        {
            using var values = shared.CreateValues();
            var span = TensorMemory.AsSpan(values);
            var outputs = new List<float[]>();
            foreach (var (offset, length) in ranges)
            {
                for (int i = 0; i < Count; i++)
                    span[i] = Input(rank, i);
                Assert.AreEqual(offset, shared.OffsetOf(span.Slice(offset, length)));
                shared.AllReduce(offset, length, guard);
                outputs.Add(span.ToArray());
            }
            return outputs;
        }, out int[] guards);
        // Every wait at a barrier is guarded by the watchdog: two per all-reduce.
        CollectionAssert.AreEqual(Enumerable.Repeat(2 * ranges.Length, worldSize).ToArray(), guards);
        for (int r = 0; r < ranges.Length; r++)
        {
            var (offset, length) = ranges[r];
            for (int i = 0; i < Count; i++)
            {
                float expected = Input(0, i);
                if (i >= offset && i < offset + length)
                    for (int rank = 1; rank < worldSize; rank++)
                        expected += Input(rank, i);
                Assert.AreEqual(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(results[0][r][i]), $"range {r}, element {i}");
            }
            // Outside the range every rank keeps its own values; inside, all hold the same bits.
            for (int rank = 1; rank < worldSize; rank++)
                for (int i = offset; i < offset + length; i++)
                    Assert.AreEqual(BitConverter.SingleToInt32Bits(results[0][r][i]), BitConverter.SingleToInt32Bits(results[rank][r][i]));
        }
    }

    [TestMethod]
    public void ARankWaitingForALatePeerSleepsUntilItArrives()
    {
        // Rank 1 arrives 400 ms late: rank 0 must sleep at the barrier (a futex the peer's arrival wakes), not spin or
        // yield the whole time, and still end with the sum.
        var cpu = OnRanks(2, (rank, shared, guard) =>
        {
            using var values = shared.CreateValues();
            TensorMemory.AsSpan(values).Fill(rank + 1);
            if (rank == 1)
                Thread.Sleep(400);
            var before = Process.GetCurrentProcess().TotalProcessorTime;
            var waited = Stopwatch.StartNew();
            shared.AllReduce(0, Count, guard);
            var used = Process.GetCurrentProcess().TotalProcessorTime - before;
            Assert.IsTrue(TensorMemory.AsSpan(values).ToArray().All(v => v == 3), "the sum");
            return (Used: used, Waited: waited.Elapsed);
        })[0];
        Assert.IsGreaterThan(0.3, cpu.Waited.TotalSeconds, "rank 0 waited for rank 1");
        Assert.IsLessThan(0.1, cpu.Used.TotalSeconds, $"the process used {cpu.Used.TotalMilliseconds:F0} ms of CPU while rank 0 waited {cpu.Waited.TotalMilliseconds:F0} ms");
    }

    [TestMethod]
    public void SpansOutsideTheBufferAreNotTakenForIt()
    {
        OnRanks(1, (_, shared, _) =>
        {
            using var values = shared.CreateValues();
            var span = TensorMemory.AsSpan(values);
            Assert.AreEqual(0, shared.OffsetOf(span));
            Assert.AreEqual(-1, shared.OffsetOf(System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpan(ref span[0], Count + 1)));
            Assert.AreEqual(-1, shared.OffsetOf(System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpan(ref System.Runtime.CompilerServices.Unsafe.Subtract(ref span[0], 1), 2)));
            Assert.AreEqual(-1, shared.OffsetOf(new float[Count]));
            return 0;
        });
    }

    [TestMethod]
    public void RanksReducingDifferentRangesAreNamed()
    {
        var error = Assert.ThrowsExactly<ZeroCommunicationException>(() => OnRanks(2, (rank, shared, guard) =>
        {
            shared.AllReduce(0, rank == 0 ? 10 : 12, guard);
            return 0;
        }));
        StringAssert.Contains(error.Message, "sums 10 values from 0, but rank 1's all-reduce 1 sums 12 values from 0");
    }
}
