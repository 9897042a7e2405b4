using static TorchSharp.torch;
using System.Diagnostics;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Distributed.Mpi;
using Microsoft.ML.Zero.Tensors;

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
    private static T[] OnRanks<T>(int worldSize, Func<int, SharedReduceBuffer, Func<IDisposable>, T> body, ScalarType format = ScalarType.Float32) =>
        OnRanks(worldSize, body, out _, format);

    private static T[] OnRanks<T>(int worldSize, Func<int, SharedReduceBuffer, Func<IDisposable>, T> body, out int[] guards, ScalarType format = ScalarType.Float32)
    {
        TorchRuntimeForTests.Load();
        long tag = Random.Shared.NextInt64(1, 1L << 40);
        var paths = Enumerable.Range(0, worldSize).Select(rank => SharedReduceBuffer.FilePath(tag, rank)).ToArray();
        foreach (string path in paths)
            SharedReduceBuffer.CreateFile(path, Count, format);
        var buffers = Enumerable.Range(0, worldSize).Select(rank => SharedReduceBuffer.Map(rank, Count, paths, format: format)).ToArray();
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
                Assert.AreEqual(offset, shared.OffsetOf<float>(span.Slice(offset, length)));
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
    [DataRow(ScalarType.BFloat16, 2)]
    [DataRow(ScalarType.BFloat16, 3)]
    [DataRow(ScalarType.Float16, 3)]
    public void SixteenBitRangesAreSummedInTheirTypeInRankOrder(ScalarType format, int worldSize)
    {
        // The expected sum is libtorch's: rank by rank, widened to fp32 and rounded back after each addition.
        const int Offset = 3, Length = Count - 10;
        var type = format;
        ushort[] Bits(TorchSharp.torch.Tensor t) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(t.contiguous().bytes).ToArray();
        TorchRuntimeForTests.Load();
        var inputs = Enumerable.Range(0, worldSize).Select(rank => TorchSharp.torch.tensor(Enumerable.Range(0, Count).Select(i => Input(rank, i) * 100).ToArray()).to(type)).ToArray();
        var expected = inputs[0];
        for (int rank = 1; rank < worldSize; rank++)
            expected = (expected.to(ScalarType.Float32) + inputs[rank].to(ScalarType.Float32)).to(type);
        var expectedBits = Bits(expected);

        var results = OnRanks(worldSize, (rank, shared, guard) =>
        {
            using var values = shared.CreateValues();
            Assert.AreEqual(type, values.dtype);
            values.copy_(inputs[rank]);
            var bits = TensorMemory.AsBits(values);
            Assert.AreEqual(-1, shared.OffsetOf<float>(System.Runtime.InteropServices.MemoryMarshal.Cast<ushort, float>(bits)), "fp32 values over the 16-bit ones are not a range of them");
            Assert.AreEqual(Offset, shared.OffsetOf<ushort>(bits.Slice(Offset, Length)));
            shared.AllReduce(Offset, Length, guard);
            return bits.ToArray();
        }, format);
        for (int rank = 0; rank < worldSize; rank++)
        {
            var own = Bits(inputs[rank]);
            for (int i = 0; i < Count; i++)
            {
                bool inRange = i >= Offset && i < Offset + Length;
                Assert.AreEqual(inRange ? expectedBits[i] : own[i], results[rank][i], $"rank {rank}, element {i}");
            }
        }
    }

    [TestMethod]
    public void ARankWaitingForALatePeerSleepsUntilItArrives()
    {
        // Rank 1 arrives 400 ms late: rank 0 must sleep at the barrier (a futex the peer's arrival wakes), not spin or
        // yield the whole time, and still end with the sum. Only rank 0's thread is timed: other threads of the test
        // process (the JIT's, earlier tests') may be busy meanwhile.
        var cpu = OnRanks(2, (rank, shared, guard) =>
        {
            using var values = shared.CreateValues();
            shared.AllReduce(0, Count, guard); // untimed: compiles the sum
            TensorMemory.AsSpan(values).Fill(rank + 1);
            if (rank == 1)
                Thread.Sleep(400);
            var before = ThreadCpuTime();
            var waited = Stopwatch.StartNew();
            shared.AllReduce(0, Count, guard);
            var used = ThreadCpuTime() - before;
            Assert.IsTrue(TensorMemory.AsSpan(values).ToArray().All(v => v == 3), "the sum");
            return (Used: used, Waited: waited.Elapsed);
        })[0];
        Assert.IsGreaterThan(0.3, cpu.Waited.TotalSeconds, "rank 0 waited for rank 1");
        Assert.IsLessThan(0.05, cpu.Used.TotalSeconds, $"rank 0 used {cpu.Used.TotalMilliseconds:F0} ms of CPU while it waited {cpu.Waited.TotalMilliseconds:F0} ms");
    }

    // The CPU time (user and system) of the calling thread, from getrusage(RUSAGE_THREAD).
    private static TimeSpan ThreadCpuTime()
    {
        const int RusageThread = 1;
        var usage = new long[18]; // struct rusage: two timevals (seconds, microseconds), then 14 longs
        Assert.AreEqual(0, GetResourceUsage(RusageThread, usage), "getrusage");
        return TimeSpan.FromSeconds(usage[0] + usage[2]) + TimeSpan.FromMicroseconds(usage[1] + usage[3]);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "getrusage")]
    private static extern int GetResourceUsage(int who, [System.Runtime.InteropServices.Out] long[] usage);

    [TestMethod]
    public void SpansOutsideTheBufferAreNotTakenForIt()
    {
        OnRanks(1, (_, shared, _) =>
        {
            using var values = shared.CreateValues();
            var span = TensorMemory.AsSpan(values);
            Assert.AreEqual(0, shared.OffsetOf<float>(span));
            Assert.AreEqual(-1, shared.OffsetOf<float>(System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpan(ref span[0], Count + 1)));
            Assert.AreEqual(-1, shared.OffsetOf<float>(System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpan(ref System.Runtime.CompilerServices.Unsafe.Subtract(ref span[0], 1), 2)));
            Assert.AreEqual(-1, shared.OffsetOf<float>(new float[Count]));
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
