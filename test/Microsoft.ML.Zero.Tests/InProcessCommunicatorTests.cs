using static TorchSharp.torch;
using System.Diagnostics;
using Microsoft.ML.Zero.Distributed;

namespace Microsoft.ML.Zero.Tests;

[TestClass]
public sealed class InProcessCommunicatorTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    [DataRow(3)]
    [DataRow(4)]
    public void AllReduceSumsAndEveryRankGetsTheSameBits(int worldSize)
    {
        const int Length = 1001; // not a multiple of the world size: the last chunk is short
        var results = InProcessLauncher.Run(worldSize, Timeout, communicator =>
        {
            var buffer = Enumerable.Range(0, Length).Select(i => (float)Math.Sin(i + communicator.Rank * 0.1)).ToArray();
            communicator.AllReduce(buffer, ReduceOperation.Sum);
            return buffer;
        });
        for (int i = 0; i < Length; i++)
        {
            double expected = Enumerable.Range(0, worldSize).Sum(rank => (double)(float)Math.Sin(i + rank * 0.1));
            Assert.AreEqual(expected, results[0][i], 1e-5, $"element {i}");
        }
        foreach (var result in results)
            CollectionAssert.AreEqual(results[0], result);
    }

    [TestMethod]
    [DataRow(ScalarType.BFloat16, 2)]
    [DataRow(ScalarType.BFloat16, 3)]
    [DataRow(ScalarType.Float16, 2)]
    [DataRow(ScalarType.Float16, 3)]
    public void SixteenBitAllReduceRoundsEachSumAsLibtorchDoes(ScalarType format, int worldSize)
    {
        // Values over many magnitudes, with infinities, NaN and subnormals; 2,500 is past one conversion block and not a
        // multiple of the vector width. The expected sum is computed by libtorch: rank by rank, widened to fp32, rounded.
        TorchRuntimeForTests.Load();
        const int Length = 2_500;
        var type = format == ScalarType.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float16;
        var random = new Random(5);
        float[] Values(int rank) => Enumerable.Range(0, Length).Select(i => i switch
        {
            0 => float.PositiveInfinity,
            1 => float.NaN,
            2 => rank == 0 ? 1e-40f : 3e-8f,
            _ => (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-6, 5))),
        }).ToArray();
        var inputs = Enumerable.Range(0, worldSize).Select(Values).ToArray();
        ushort[] Bits(TorchSharp.torch.Tensor t) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(t.contiguous().bytes).ToArray();
        var expected = TorchSharp.torch.tensor(inputs[0]).to(type);
        for (int rank = 1; rank < worldSize; rank++)
            expected = (expected.to(ScalarType.Float32) + TorchSharp.torch.tensor(inputs[rank]).to(type).to(ScalarType.Float32)).to(type);
        var sent = inputs.Select(values => Bits(TorchSharp.torch.tensor(values).to(type))).ToArray();

        var results = InProcessLauncher.Run(worldSize, Timeout, communicator =>
        {
            var buffer = sent[communicator.Rank];
            communicator.AllReduce(buffer, format);
            return buffer;
        });
        // NaN payloads may differ; every other value must have libtorch's bits.
        var expectedBits = Bits(expected);
        var expectedValues = expected.to(ScalarType.Float32).data<float>().ToArray();
        for (int i = 0; i < Length; i++)
            Assert.IsTrue(expectedBits[i] == results[0][i] || float.IsNaN(expectedValues[i]) && IsNaN(results[0][i], format),
                $"element {i}: expected 0x{expectedBits[i]:X4}, got 0x{results[0][i]:X4}");
        Assert.IsTrue(IsNaN(results[0][1], format), "NaN + NaN is NaN");
        foreach (var result in results)
            CollectionAssert.AreEqual(results[0], result);
    }

    private static bool IsNaN(ushort bits, ScalarType format) =>
        format == ScalarType.BFloat16 ? (bits & 0x7F80) == 0x7F80 && (bits & 0x7F) != 0 : (bits & 0x7C00) == 0x7C00 && (bits & 0x3FF) != 0;

    [TestMethod]
    public void MaxBroadcastAndAllGatherCombineEveryRank()
    {
        var results = InProcessLauncher.Run(3, Timeout, communicator =>
        {
            var max = new[] { (float)communicator.Rank, -communicator.Rank };
            communicator.AllReduce(max, ReduceOperation.Max);
            var broadcast = new[] { communicator.Rank * 10f, 1f };
            communicator.Broadcast(broadcast, root: 2);
            long[] gathered = communicator.AllGather(long.MaxValue - communicator.Rank);
            communicator.Barrier();
            return (max, broadcast, gathered);
        });
        foreach (var (max, broadcast, gathered) in results)
        {
            CollectionAssert.AreEqual(new[] { 2f, 0f }, max);
            CollectionAssert.AreEqual(new[] { 20f, 1f }, broadcast);
            CollectionAssert.AreEqual(new[] { long.MaxValue, long.MaxValue - 1, long.MaxValue - 2 }, gathered);
        }
    }

    [TestMethod]
    public void ARankThatNeverArrivesTimesOutNamingIt()
    {
        var watch = Stopwatch.StartNew();
        long waitedMilliseconds = -1;
        var error = Assert.ThrowsExactly<ZeroRankFailedException>(() => InProcessLauncher.Run(3, TimeSpan.FromMilliseconds(300), communicator =>
        {
            if (communicator.Rank == 1)
            {
                Thread.Sleep(2000); // busy elsewhere, far past the timeout
                return 0;
            }
            try
            {
                communicator.Barrier();
            }
            finally
            {
                if (communicator.Rank == 0)
                    waitedMilliseconds = watch.ElapsedMilliseconds;
            }
            return 0;
        }));
        Assert.IsTrue(waitedMilliseconds is >= 250 and < 1500, $"rank 0 gave up after {waitedMilliseconds} ms");
        StringAssert.Contains(error.Message, "Barrier");
        StringAssert.Contains(error.Message, "rank(s) 1");
        Assert.IsInstanceOfType<ZeroCommunicationException>(error.InnerException);
    }

    [TestMethod]
    public void ARankThatThrowsStopsTheOthersPromptlyAndIsNamed()
    {
        var watch = Stopwatch.StartNew();
        var error = Assert.ThrowsExactly<ZeroRankFailedException>(() => InProcessLauncher.Run(4, TimeSpan.FromMinutes(5), communicator =>
        {
            if (communicator.Rank == 2)
                throw new InvalidOperationException("bad row 7");
            var buffer = new float[16];
            communicator.AllReduce(buffer, ReduceOperation.Sum);
            return 0;
        }));
        Assert.IsTrue(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
        Assert.AreEqual(2, error.Rank);
        StringAssert.Contains(error.Message, "Rank 2 of 4 failed: bad row 7");
    }

    [TestMethod]
    public void BuffersOfDifferentLengthsAreAnError()
    {
        var error = Assert.ThrowsExactly<ZeroRankFailedException>(() => InProcessLauncher.Run(2, Timeout, communicator =>
        {
            communicator.AllReduce(new float[communicator.Rank == 0 ? 4 : 5], ReduceOperation.Sum);
            return 0;
        }));
        StringAssert.Contains(error.Message, "same length");
    }
}
