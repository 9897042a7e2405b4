using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Zero.Distributed;

/// <summary>
/// Sums of 16-bit floats (bf16 or fp16, held as their raw bits) for gradients all-reduced in
/// <see cref="ZeroOptions.CommunicationDataType"/>: values are widened to fp32, added, and rounded back to nearest-even,
/// the same bits libtorch's conversions give.
/// </summary>
internal static class HalfFloats
{
    private const int Block = 1024;

    /// <summary>accumulator[i] = round(accumulator[i] + values[i]), in <paramref name="format"/>.</summary>
    public static void AddInto(Span<ushort> accumulator, ReadOnlySpan<ushort> values, ZeroPrecision format)
    {
        if (values.Length != accumulator.Length)
            throw new ArgumentException($"Cannot add {values.Length} values into {accumulator.Length}.", nameof(values));
        Span<float> sum = stackalloc float[Block];
        Span<float> addend = stackalloc float[Block];
        for (int start = 0; start < accumulator.Length; start += Block)
        {
            int count = Math.Min(Block, accumulator.Length - start);
            var target = accumulator.Slice(start, count);
            ToSingle(target, sum[..count], format);
            ToSingle(values.Slice(start, count), addend[..count], format);
            TensorPrimitives.Add(sum[..count], addend[..count], sum[..count]);
            FromSingle(sum[..count], target, format);
        }
    }

    public static void ToSingle(ReadOnlySpan<ushort> bits, Span<float> values, ZeroPrecision format)
    {
        if (format == ZeroPrecision.Fp16)
        {
            TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<ushort, Half>(bits), values);
            return;
        }
        RequireBf16(format);
        // A bf16 is the upper half of an fp32.
        var wide = MemoryMarshal.Cast<float, uint>(values);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= bits.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
            {
                var (lower, upper) = Vector256.Widen(Vector256.Create(bits.Slice(i, Vector256<ushort>.Count)));
                (lower << 16).CopyTo(wide[i..]);
                (upper << 16).CopyTo(wide[(i + Vector256<uint>.Count)..]);
            }
        }
        for (; i < bits.Length; i++)
            wide[i] = (uint)bits[i] << 16;
    }

    public static void FromSingle(ReadOnlySpan<float> values, Span<ushort> bits, ZeroPrecision format)
    {
        if (format == ZeroPrecision.Fp16)
        {
            TensorPrimitives.ConvertToHalf(values, MemoryMarshal.Cast<ushort, Half>(bits));
            return;
        }
        RequireBf16(format);
        var wide = MemoryMarshal.Cast<float, uint>(values);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= values.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
            {
                var lower = RoundToBf16(Vector256.Create(wide.Slice(i, Vector256<uint>.Count)));
                var upper = RoundToBf16(Vector256.Create(wide.Slice(i + Vector256<uint>.Count, Vector256<uint>.Count)));
                Vector256.Narrow(lower, upper).CopyTo(bits[i..]);
            }
        }
        for (; i < values.Length; i++)
            bits[i] = RoundToBf16(wide[i]);
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

    private static void RequireBf16(ZeroPrecision format)
    {
        if (format != ZeroPrecision.Bf16)
            throw new ArgumentOutOfRangeException(nameof(format), format, "A 16-bit sum needs Fp16 or Bf16.");
    }
}
