namespace Microsoft.ML.Zero;

/// <summary>The number format the model computes in (DeepSpeed's <c>fp16.enabled</c> / <c>bf16.enabled</c>).</summary>
public enum ZeroPrecision
{
    /// <summary>32-bit floats throughout.</summary>
    Fp32,

    /// <summary>bfloat16 forward and backward, fp32 master weights and loss; no loss scaling (bf16 has fp32's range).</summary>
    Bf16,

    /// <summary>IEEE half forward and backward, fp32 master weights and loss, with dynamic loss scaling.</summary>
    Fp16,

    /// <summary>
    /// Bf16 where the device computes it natively (CPUs with AVX512_BF16 or AMX), else Fp32: the faster of the two here
    /// [<c>"bf16": { "enabled": "auto" }</c>]. The choice and its reason are logged once, before training starts;
    /// the environment variable ZERO_NATIVE_BF16=0 (or 1) overrides the timed matmul it rests on.
    /// </summary>
    Auto,
}
