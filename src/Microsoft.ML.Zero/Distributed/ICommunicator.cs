using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Distributed;

/// <summary>How <see cref="ICommunicator.AllReduce(Span{float}, ReduceOperation)"/> combines the ranks' values.</summary>
internal enum ReduceOperation
{
    /// <summary>Element-wise sum.</summary>
    Sum,

    /// <summary>Element-wise maximum.</summary>
    Max,
}

/// <summary>
/// The collectives a data-parallel engine needs. Every rank calls the same operations in the same order;
/// each call returns only when all ranks took part, or throws a <see cref="ZeroCommunicationException"/>
/// naming the rank when a peer failed or did not arrive within the timeout.
/// </summary>
internal interface ICommunicator : IDisposable
{
    /// <summary>This rank, from 0 to <see cref="WorldSize"/> - 1.</summary>
    int Rank { get; }

    /// <summary>The number of ranks taking part.</summary>
    int WorldSize { get; }

    /// <summary>Combines <paramref name="buffer"/> over all ranks in place; every rank ends with the same bits.</summary>
    void AllReduce(Span<float> buffer, ReduceOperation operation);

    /// <summary>
    /// Sums 16-bit floats (<paramref name="format"/> Bf16 or Fp16, as raw bits) over all ranks in place; every rank ends
    /// with the same bits. Each addition rounds to the 16-bit format, as a reduction in that type does.
    /// </summary>
    void AllReduce(Span<ushort> buffer, ScalarType format);

    /// <summary>Copies <paramref name="buffer"/> of rank <paramref name="root"/> into every rank's buffer.</summary>
    void Broadcast(Span<float> buffer, int root);

    /// <summary>Returns every rank's <paramref name="value"/>, indexed by rank.</summary>
    long[] AllGather(long value);

    /// <summary>Returns once every rank has called it.</summary>
    void Barrier();

    /// <summary>
    /// A zeroed CPU buffer of <paramref name="count"/> values of <paramref name="format"/> (fp32, or bf16/fp16 for the
    /// 16-bit AllReduce) to sum ranges of (the engine's flat gradients). A communicator may place it where a sum over
    /// ranks is cheapest: MPI ranks on one machine get it in memory they share, and sum each other's buffers directly.
    /// Every rank calls this together with the same count and format. Dispose the returned buffer when done.
    /// </summary>
    ReduceBuffer AllocateReduceBuffer(long count, ScalarType format = ScalarType.Float32);
}
