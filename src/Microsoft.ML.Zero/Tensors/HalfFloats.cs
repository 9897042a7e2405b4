using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tensors;

/// <summary>
/// 16-bit floats (bf16 or fp16, held as their raw bits) in vector passes: sums for gradients all-reduced in
/// communication_data_type (widened to fp32, added, and rounded back to nearest-even, the same
/// bits libtorch's conversions give), and the widening and rounding the flat AdamW does a block at a time.
/// </summary>
internal static unsafe class HalfFloats
{
    /// <summary>accumulator[i] = round(accumulator[i] + values[i]), in <paramref name="format"/>.</summary>
    public static void AddInto(Span<ushort> accumulator, ReadOnlySpan<ushort> values, ScalarType format)
    {
        if (values.Length != accumulator.Length)
            throw new ArgumentException($"Cannot add {values.Length} values into {accumulator.Length}.", nameof(values));
        if (format == ScalarType.BFloat16)
            AddBf16(accumulator, values);
        else if (format == ScalarType.Float16)
            AddFp16(accumulator, values);
        else
            throw new ArgumentOutOfRangeException(nameof(format), format, "A 16-bit sum needs Fp16 or Bf16.");
    }

    /// <summary>values[i] as fp32, exactly: the bits of <paramref name="format"/> (Bf16 or Fp16) widened.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Widen(ReadOnlySpan<ushort> values, Span<float> widened, ScalarType format)
    {
        if (widened.Length != values.Length)
            throw new ArgumentException($"Cannot widen {values.Length} values into {widened.Length}.", nameof(widened));
        bool bf16 = IsBf16(format);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            fixed (ushort* source = values)
            fixed (float* target = widened)
            {
                for (; i <= values.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
                {
                    var (lower, upper) = Vector256.Widen(Vector256.Load(source + i));
                    (bf16 ? (lower << 16).AsSingle() : HalfToSingle(lower)).Store(target + i);
                    (bf16 ? (upper << 16).AsSingle() : HalfToSingle(upper)).Store(target + i + Vector256<float>.Count);
                }
            }
        }
        for (; i < values.Length; i++)
            widened[i] = bf16 ? BitConverter.UInt32BitsToSingle((uint)values[i] << 16) : (float)BitConverter.UInt16BitsToHalf(values[i]);
    }

    /// <summary>values[i] rounded to nearest-even in <paramref name="format"/> (Bf16 or Fp16), as libtorch's conversion rounds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Round(ReadOnlySpan<float> values, Span<ushort> rounded, ScalarType format)
    {
        if (rounded.Length != values.Length)
            throw new ArgumentException($"Cannot round {values.Length} values into {rounded.Length}.", nameof(rounded));
        bool bf16 = IsBf16(format);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            fixed (float* source = values)
            fixed (ushort* target = rounded)
            {
                for (; i <= values.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
                {
                    var lower = Vector256.Load(source + i);
                    var upper = Vector256.Load(source + i + Vector256<float>.Count);
                    var narrowed = bf16
                        ? Vector256.Narrow(RoundToBf16(lower.AsUInt32()), RoundToBf16(upper.AsUInt32()))
                        : Vector256.Narrow(SingleToHalf(lower), SingleToHalf(upper));
                    narrowed.Store(target + i);
                }
            }
        }
        for (; i < values.Length; i++)
            rounded[i] = bf16 ? RoundToBf16(BitConverter.SingleToUInt32Bits(values[i])) : BitConverter.HalfToUInt16Bits((Half)values[i]);
    }

    // True for Bf16, false for Fp16.
    private static bool IsBf16(ScalarType format) => format switch
    {
        ScalarType.BFloat16 => true,
        ScalarType.Float16 => false,
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "Expected Fp16 or Bf16."),
    };

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

    // IEEE half: each pair widened to fp32 exactly, added, and rounded back to nearest-even, in one pass (the vector
    // conversions below give .NET's and libtorch's bits; NaN payloads may differ). Compiled optimized at once, as AddBf16.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddFp16(Span<ushort> accumulator, ReadOnlySpan<ushort> values)
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
                    var lower = HalfToSingle(sumLower) + HalfToSingle(addLower);
                    var upper = HalfToSingle(sumUpper) + HalfToSingle(addUpper);
                    Vector256.Narrow(SingleToHalf(lower), SingleToHalf(upper)).Store(sums + i);
                }
            }
        }
        for (; i < accumulator.Length; i++)
        {
            float sum = (float)BitConverter.UInt16BitsToHalf(accumulator[i]) + (float)BitConverter.UInt16BitsToHalf(values[i]);
            accumulator[i] = BitConverter.HalfToUInt16Bits((Half)sum);
        }
    }

    // Half bits (in the low 16 bits of each lane) to fp32, exactly: the exponent is rebiased; infinities and NaNs get
    // fp32's all-ones exponent; zeros and subnormals are renormalized by an fp32 subtraction.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> HalfToSingle(Vector256<uint> half)
    {
        var magnitude = (half & Vector256.Create(0x7FFFu)) << 13;
        var exponent = magnitude & Vector256.Create(0x0F800000u);
        var normal = magnitude + Vector256.Create((127u - 15) << 23);
        var infinityOrNaN = normal + Vector256.Create((128u - 16) << 23);
        var magic = Vector256.Create(113u << 23);
        var subnormal = ((magnitude + magic).AsSingle() - magic.AsSingle()).AsUInt32();
        var value = Vector256.ConditionalSelect(Vector256.Equals(exponent, Vector256.Create(0x0F800000u)), infinityOrNaN,
            Vector256.ConditionalSelect(Vector256.Equals(exponent, Vector256<uint>.Zero), subnormal, normal));
        return (value | ((half & Vector256.Create(0x8000u)) << 16)).AsSingle();
    }

    // fp32 to half bits (in the low 16 bits of each lane), rounded to nearest-even: overflow gives infinity and NaN a
    // quiet NaN; results below half's normal range are rounded by adding a magic fp32 that aligns their 10 bits.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> SingleToHalf(Vector256<float> single)
    {
        var bits = single.AsUInt32();
        var sign = bits & Vector256.Create(0x80000000u);
        var magnitude = bits ^ sign;
        var infinityOrNaN = Vector256.ConditionalSelect(Vector256.GreaterThan(magnitude, Vector256.Create(255u << 23)),
            Vector256.Create(0x7E00u), Vector256.Create(0x7C00u));
        var magic = Vector256.Create(((127u - 15) + (23 - 10) + 1) << 23);
        var subnormal = (magnitude.AsSingle() + magic.AsSingle()).AsUInt32() - magic;
        var odd = (magnitude >> 13) & Vector256<uint>.One;
        var normal = (magnitude + Vector256.Create(unchecked((uint)((15 - 127) << 23) + 0xFFFu)) + odd) >> 13;
        var value = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(magnitude, Vector256.Create((127u + 16) << 23)), infinityOrNaN,
            Vector256.ConditionalSelect(Vector256.LessThan(magnitude, Vector256.Create(113u << 23)), subnormal, normal));
        return value | (sign >> 16);
    }

    // Round to nearest, ties to even; a NaN stays a quiet NaN (as c10::BFloat16).
    private static ushort RoundToBf16(uint bits) =>
        float.IsNaN(BitConverter.UInt32BitsToSingle(bits)) ? (ushort)0x7FC0 : (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> RoundToBf16(Vector256<uint> bits)
    {
        var rounded = (bits + Vector256.Create(0x7FFFu) + ((bits >> 16) & Vector256<uint>.One)) >> 16;
        var floats = bits.AsSingle();
        var isNumber = Vector256.Equals(floats, floats).AsUInt32();
        return Vector256.ConditionalSelect(isNumber, rounded, Vector256.Create(0x7FC0u));
    }
}
