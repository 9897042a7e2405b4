using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Training;

/// <summary>
/// The step's summed gradients and the factors (averaging, unscaling, clipping) still to apply to them. fp32 gradients
/// take each factor in place at once; 16-bit ones keep the product for the optimizer, which applies it as it widens
/// them (the flat AdamW a block at a time, so no fp32 copy of 4 more bytes per value exists).
/// </summary>
internal sealed class ScaledGradients
{
    private readonly Tensor _summed;
    private readonly bool _inPlace;

    public ScaledGradients(Tensor summed, double factor)
    {
        _summed = summed;
        _inPlace = summed.dtype == ScalarType.Float32;
        Multiply(factor);
    }

    /// <summary>The factor the optimizer still applies: 1 for fp32 gradients.</summary>
    public double PendingFactor { get; private set; } = 1;

    public void Multiply(double factor)
    {
        if (factor == 1)
            return;
        if (_inPlace)
            _summed.mul_(factor);
        else
            PendingFactor *= factor;
    }

    /// <summary>
    /// As torch.nn.utils.clip_grad_norm_: scales the gradients by max_norm / (norm + 1e-6) when that is below 1.
    /// Returns their L2 norm before clipping.
    /// </summary>
    public double ClipToNorm(double maxNorm)
    {
        double norm = (_inPlace ? _summed.norm().item<float>() : Fp32Norm(_summed)) * PendingFactor;
        double coefficient = maxNorm / (norm + 1e-6);
        if (coefficient < 1)
            Multiply(coefficient);
        return norm;
    }

    // The L2 norm of 16-bit gradients, summed in fp32 a chunk at a time.
    private static double Fp32Norm(Tensor gradients)
    {
        const long Chunk = 1 << 20; // 4 MB of fp32 at a time
        double squares = 0;
        for (long start = 0; start < gradients.numel(); start += Chunk)
        {
            using var scope = NewDisposeScope();
            var chunk = gradients.narrow(0, start, Math.Min(Chunk, gradients.numel() - start)).to(ScalarType.Float32);
            squares += chunk.dot(chunk).item<float>();
        }
        return Math.Sqrt(squares);
    }
}
