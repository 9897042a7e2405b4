using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Loop;

/// <summary>A rank's rows of one epoch, in training order, ready to give the summed loss of any slice.</summary>
internal interface IEpochShard
{
    /// <summary>The number of rows this rank holds for the epoch.</summary>
    int Count { get; }

    /// <summary>The summed (not averaged) loss of rows [start, start + count) under the model being trained.</summary>
    Tensor LossSum(int start, int count);
}
