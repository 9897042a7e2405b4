using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Zero.Distributed;

/// <summary>
/// Sums of 16-bit floats (bf16 or fp16, held as their raw bits) for gradients all-reduced in
/// <see cref="ZeroOptions.CommunicationDataType"/>: values are widened to fp32, added, and rounded back to nearest-even,
/// the same bits libtorch's conversions give.
/// </summary>
internal static unsafe class HalfFloats
{
    private const int Block = 1024;

    /// <summary>accumulator[i] = round(accumulator[i] + values[i]), in <paramref name="format"/>.</summary>
    public static void AddInto(Span<ushort> accumulator, ReadOnlySpan<ushort> values, ZeroPrecision format)
    {
        if (values.Length != accumulator.Length)
            throw new ArgumentException($"Cannot add {values.Length} values into {accumulator.Length}.", nameof(values));
        if (format == ZeroPrecision.Bf16)
            AddBf16(accumulator, values);
        else if (format == ZeroPrecision.Fp16)
            AddFp16(accumulator, values);
        else
            throw new ArgumentOutOfRangeException(nameof(format), format, "A 16-bit sum needs Fp16 or Bf16.");
    }

    // A bf16 is the upper half of an fp32: widening is a shift, and each sum is rounded back in the same pass. Compiled
    // optimized from the first call: callers add 1,024 values at a time, too few for a loop to leave tier-0 code, which
    // ran 15x slower for the first hundreds of calls.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddBf16(Span<ushort> accumulator, ReadOnlySpan<ushort> values)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            fixed (ushort* sums = accumulator, addends = values)
            {
                for (; i <= accumulator.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
                {
                    var (sumLower, sumUpper) = Vector256.Widen(Vector256.Load(sums + i));
                    var (addLower, addUpper) = Vector256.Widen(Vector256.Load(addends + i));
                    var lower = ((sumLower << 16).AsSingle() + (addLower << 16).AsSingle()).AsUInt32();
                    var upper = ((sumUpper << 16).AsSingle() + (addUpper << 16).AsSingle()).AsUInt32();
                    Vector256.Narrow(RoundToBf16(lower), RoundToBf16(upper)).Store(sums + i);
                }
            }
        }
        for (; i < accumulator.Length; i++)
        {
            float sum = BitConverter.UInt32BitsToSingle((uint)accumulator[i] << 16) + BitConverter.UInt32BitsToSingle((uint)values[i] << 16);
            accumulator[i] = RoundToBf16(BitConverter.SingleToUInt32Bits(sum));
        }
    }

    // IEEE half through .NET's conversions, a block at a time.
    private static void AddFp16(Span<ushort> accumulator, ReadOnlySpan<ushort> values)
    {
        Span<float> sum = stackalloc float[Block];
        Span<float> addend = stackalloc float[Block];
        for (int start = 0; start < accumulator.Length; start += Block)
        {
            int count = Math.Min(Block, accumulator.Length - start);
            var target = MemoryMarshal.Cast<ushort, Half>(accumulator.Slice(start, count));
            TensorPrimitives.ConvertToSingle(target, sum[..count]);
            TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<ushort, Half>(values.Slice(start, count)), addend[..count]);
            TensorPrimitives.Add(sum[..count], addend[..count], sum[..count]);
            TensorPrimitives.ConvertToHalf(sum[..count], target);
        }
    }

    // Round to nearest, ties to even; a NaN stays a quiet NaN (as c10::BFloat16).
    private static ushort RoundToBf16(uint bits) =>
        float.IsNaN(BitConverter.UInt32BitsToSingle(bits)) ? (ushort)0x7FC0 : (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);

    private static Vector256<uint> RoundToBf16(Vector256<uint> bits)
    {
        var rounded = (bits + Vector256.Create(0x7FFFu) + ((bits >> 16) & Vector256<uint>.One)) >> 16;
        var floats = bits.AsSingle();
        var isNumber = Vector256.Equals(floats, floats).AsUInt32();
        return Vector256.ConditionalSelect(isNumber, rounded, Vector256.Create(0x7FC0u));
    }
}
