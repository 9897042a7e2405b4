using Microsoft.ML.Zero.Config;
namespace Microsoft.ML.Zero;

/// <summary>
/// DeepSpeed's <c>zero_optimization</c> block. This trainer does stage 0: every rank holds the whole model, optimizer
/// state and gradients, and gradients are averaged with all-reduce.
/// </summary>
public sealed class ZeroOptimizationOptions
{
    /// <summary>The ZeRO stage; only 0 is done here [<c>zero_optimization.stage</c>].</summary>
    public int Stage;

    /// <summary>25 MiB of fp32 values, PyTorch DDP's bucket size.</summary>
    internal const long DefaultReduceBucketSize = 25 << 18;

    /// <summary>
    /// All-reduce gradients in buckets while the backward pass runs, on a communication thread, instead of the whole
    /// buffer after it [<c>zero_optimization.overlap_comm</c>].
    /// </summary>
    public bool OverlapCommunication;

    /// <summary>Gradient values per all-reduce bucket when overlapping; 25 MiB of fp32 by default [<c>zero_optimization.reduce_bucket_size</c>].</summary>
    public long ReduceBucketSize = DefaultReduceBucketSize;

    /// <summary>
    /// Gradients live in one contiguous buffer [<c>zero_optimization.contiguous_gradients</c>]. They always do at stage 0,
    /// so this has no effect; a ds_config may still set the key, which is ignored.
    /// </summary>
    [Obsolete("ContiguousGradients has no effect at stage 0: gradients always live in one contiguous buffer.")]
    public bool ContiguousGradients = true;

    internal void Validate(string prefix)
    {
        if (Stage != 0)
            throw new ArgumentOutOfRangeException(prefix + nameof(Stage), Stage,
                $"{prefix}{nameof(Stage)} (zero_optimization.stage) is {Stage}; this trainer does ZeRO stage 0 (plain data parallelism: every rank " +
                "holds the full model, gradients and optimizer state). Set the stage to 0.");
        OptionCheck.Require(ReduceBucketSize >= 1, prefix + nameof(ReduceBucketSize), ReduceBucketSize, "at least 1 element");
    }
}
