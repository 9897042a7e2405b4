using Microsoft.ML.Zero.Distributed;

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
            HalfFloats.AddInto(sums, addend, ZeroPrecision.Fp16);
            for (int i = 0; i < every.Length; i++)
            {
                var expected = (Half)((float)BitConverter.UInt16BitsToHalf(every[i]) + (float)BitConverter.UInt16BitsToHalf(addend[i]));
                var actual = BitConverter.UInt16BitsToHalf(sums[i]);
                Assert.IsTrue(Half.IsNaN(expected) ? Half.IsNaN(actual) : BitConverter.HalfToUInt16Bits(expected) == sums[i],
                    $"{name}: 0x{every[i]:X4} + 0x{addend[i]:X4} gave 0x{sums[i]:X4}, expected 0x{BitConverter.HalfToUInt16Bits(expected):X4}");
            }
        }
    }
}
