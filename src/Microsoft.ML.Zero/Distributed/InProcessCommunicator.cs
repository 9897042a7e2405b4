using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Distributed;

/// <summary>One rank's view of an <see cref="InProcessGroup"/>: ranks are threads of this process.</summary>
internal sealed unsafe class InProcessCommunicator : ICommunicator
{
    private readonly InProcessGroup _group;

    public InProcessCommunicator(InProcessGroup group, int rank)
    {
        if (rank < 0 || rank >= group.WorldSize)
            throw new ArgumentOutOfRangeException(nameof(rank), rank, $"Rank must be from 0 to {group.WorldSize - 1}.");
        _group = group;
        Rank = rank;
    }

    public int Rank { get; }

    public int WorldSize => _group.WorldSize;

    public void AllReduce(Span<float> buffer, ReduceOperation operation)
    {
        // The caller's buffer stays pinned for the whole call, and the call returns only after every rank is done with it.
        fixed (float* pointer = buffer)
            _group.AllReduce(Rank, pointer, buffer.Length, operation);
    }

    public void AllReduce(Span<ushort> buffer, ScalarType format)
    {
        fixed (ushort* pointer = buffer)
            _group.AllReduce(Rank, pointer, buffer.Length, format);
    }

    public void Broadcast(Span<float> buffer, int root)
    {
        fixed (float* pointer = buffer)
            _group.Broadcast(Rank, pointer, buffer.Length, root);
    }

    public long[] AllGather(long value) => _group.AllGather(Rank, value);

    public void Barrier() => _group.Barrier(Rank);

    // Threads share one address space already: any buffer is summed in place by the ranks together.
    public ReduceBuffer AllocateReduceBuffer(long count, ScalarType format = ScalarType.Float32) => new(TorchSharp.torch.zeros(count, format));

    public void Dispose()
    {
    }
}
