using static TorchSharp.torch;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.Tests;

[TestClass]
public sealed class HalfFloatsTests
{
    // Every one of the 65,536 fp16 bit patterns (zeros, subnormals, normals, infinities, NaNs), added to several addends:
    // itself (overflow to infinity), zero, the patterns in reverse order and random ones. The vector conversions must
    // give the bits of .NET's scalar conversions, which round to nearest-even; a NaN must stay a NaN.
    [TestMethod]
    public void Fp16SumsOfEveryValueRoundToNearestEven()
    {
        var every = Enumerable.Range(0, 1 << 16).Select(i => (ushort)i).ToArray();
        var random = new Random(3);
        var addends = new Dictionary<string, ushort[]>
        {
            ["itself"] = every,
            ["zero"] = new ushort[every.Length],
            ["reversed"] = every.Reverse().ToArray(),
            ["random"] = every.Select(_ => (ushort)random.Next(1 << 16)).ToArray(),
        };
        foreach (var (name, addend) in addends)
        {
            var sums = (ushort[])every.Clone();
            HalfFloats.AddInto(sums, addend, ScalarType.Float16);
            for (int i = 0; i < every.Length; i++)
            {
                var expected = (Half)((float)BitConverter.UInt16BitsToHalf(every[i]) + (float)BitConverter.UInt16BitsToHalf(addend[i]));
                var actual = BitConverter.UInt16BitsToHalf(sums[i]);
                Assert.IsTrue(Half.IsNaN(expected) ? Half.IsNaN(actual) : BitConverter.HalfToUInt16Bits(expected) == sums[i],
                    $"{name}: 0x{every[i]:X4} + 0x{addend[i]:X4} gave 0x{sums[i]:X4}, expected 0x{BitConverter.HalfToUInt16Bits(expected):X4}");
            }
        }
    }

    // The flat AdamW's block conversions: every 16-bit pattern widened, and floats around every pattern (and random ones)
    // rounded, must give libtorch's conversions' bits (a NaN only needs to stay a NaN).
    [TestMethod]
    public void WideningAndRoundingGiveLibtorchsBitsForEveryValue()
    {
        TorchRuntimeForTests.Load();
        var every = Enumerable.Range(0, 1 << 16).Select(i => (ushort)i).ToArray();
        var random = new Random(5);
        // Each pattern's value, nudged up and down to land between 16-bit values, plus random bit patterns.
        var floats = every.SelectMany(bits => new[] { (float)BitConverter.UInt16BitsToHalf(bits), BitConverter.UInt32BitsToSingle((uint)bits << 16) })
            .SelectMany(f => new[] { f, MathF.BitIncrement(f), MathF.BitDecrement(f), f * 1.0001f })
            .Concat(Enumerable.Range(0, 1 << 16).Select(_ => BitConverter.UInt32BitsToSingle((uint)random.NextInt64(1L << 32)))).ToArray();
        foreach (var (format, type) in new[] { (ScalarType.BFloat16, ScalarType.BFloat16), (ScalarType.Float16, ScalarType.Float16) })
        {
            var widened = new float[every.Length];
            HalfFloats.Widen(every, widened, format);
            using var bits = TorchSharp.torch.zeros(every.Length, type);
            every.CopyTo(TensorMemory.AsBits(bits));
            var expectedWidened = bits.to(ScalarType.Float32).data<float>().ToArray();
            for (int i = 0; i < every.Length; i++)
                Assert.IsTrue(float.IsNaN(expectedWidened[i]) ? float.IsNaN(widened[i]) : BitConverter.SingleToUInt32Bits(expectedWidened[i]) == BitConverter.SingleToUInt32Bits(widened[i]),
                    $"{format}: 0x{every[i]:X4} widened to {widened[i]}, libtorch gives {expectedWidened[i]}");

            var rounded = new ushort[floats.Length];
            HalfFloats.Round(floats, rounded, format);
            using var values = TorchSharp.torch.tensor(floats);
            using var libtorchRounded = values.to(type);
            var expectedRounded = TensorMemory.AsBits(libtorchRounded).ToArray();
            for (int i = 0; i < floats.Length; i++)
            {
                bool nan = float.IsNaN(floats[i]);
                Assert.IsTrue(nan ? IsNaN(rounded[i], format) : expectedRounded[i] == rounded[i],
                    $"{format}: {floats[i]:R} (0x{BitConverter.SingleToUInt32Bits(floats[i]):X8}) rounded to 0x{rounded[i]:X4}, libtorch gives 0x{expectedRounded[i]:X4}");
            }
        }
    }

    private static bool IsNaN(ushort bits, ScalarType format) =>
        format == ScalarType.BFloat16 ? float.IsNaN(BitConverter.UInt32BitsToSingle((uint)bits << 16)) : Half.IsNaN(BitConverter.UInt16BitsToHalf(bits));
}
