using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tensors;

/// <summary>Zero-copy access to tensor storage from .NET.</summary>
internal static class TensorMemory
{
    /// <summary>A view of a contiguous CPU float tensor's storage (under 2 GB), without copying.</summary>
    public static Span<float> AsSpan(Tensor tensor)
    {
        if (tensor.dtype != ScalarType.Float32 || !tensor.is_contiguous() || tensor.device_type != DeviceType.CPU)
            throw new ArgumentException($"Expected a contiguous Float32 CPU tensor; got {tensor.dtype} on {tensor.device}.", nameof(tensor));
        return MemoryMarshal.Cast<byte, float>(tensor.bytes);
    }

    /// <summary>The raw bits of a contiguous CPU bf16 or fp16 tensor's storage, without copying.</summary>
    public static Span<ushort> AsBits(Tensor tensor)
    {
        if (tensor.dtype is not (ScalarType.BFloat16 or ScalarType.Float16) || !tensor.is_contiguous() || tensor.device_type != DeviceType.CPU)
            throw new ArgumentException($"Expected a contiguous BFloat16 or Float16 CPU tensor; got {tensor.dtype} on {tensor.device}.", nameof(tensor));
        return MemoryMarshal.Cast<byte, ushort>(tensor.bytes);
    }

    /// <summary>The bytes the given tensors' elements take (nulls count 0).</summary>
    public static long Bytes(params Tensor?[] tensors) => tensors.Sum(t => t is null ? 0 : t.numel() * t.ElementSize);
}
