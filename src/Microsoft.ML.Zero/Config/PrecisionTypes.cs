using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Config;

/// <summary>The libtorch tensor type of each <see cref="ZeroPrecision"/>.</summary>
internal static class PrecisionTypes
{
    /// <summary>The tensor type that holds values of <paramref name="precision"/>.</summary>
    public static ScalarType TensorType(this ZeroPrecision precision) => precision switch
    {
        ZeroPrecision.Bf16 => ScalarType.BFloat16,
        ZeroPrecision.Fp16 => ScalarType.Float16,
        ZeroPrecision.Fp32 => ScalarType.Float32,
        _ => throw new InvalidOperationException($"{precision} has no tensor type of its own; it is resolved to Bf16 or Fp32 before training."),
    };
}
