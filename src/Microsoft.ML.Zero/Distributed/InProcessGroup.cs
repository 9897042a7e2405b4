using System.Numerics.Tensors;

using static TorchSharp.torch;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.Distributed;

/// <summary>
/// The state that in-process ranks (one thread each) share: a rendezvous that every collective passes
/// through, and the buffers each rank publishes for the others to read. A rank that fails aborts the
/// group so the others stop waiting at once instead of running into the timeout.
/// </summary>
internal sealed unsafe class InProcessGroup
{
    private readonly object _gate = new();
    private readonly bool[] _arrived;
    private readonly nint[] _buffers;
    private readonly int[] _lengths;
    private readonly long[] _values;
    private int _arrivedCount;
    private long _generation;
    private Exception? _abortReason;
    private int _abortingRank = -1;
    private readonly string _timeoutOption;

    // What each rank entered in the current round (operation and length), and the verdict of the last complete round:
    // null when every rank entered the same collective, else the error naming the ranks that differ. The next round
    // cannot complete before every rank has read it, since it needs them all.
    private readonly (string Operation, long Length)[] _entered;
    private string? _mismatch;

    /// <param name="worldSize">The number of ranks.</param>
    /// <param name="timeout">How long a rank waits in a collective for the others.</param>
    /// <param name="timeoutOption">The option that set <paramref name="timeout"/>, named when it runs out.</param>
    public InProcessGroup(int worldSize, TimeSpan timeout, string timeoutOption = "the communication timeout")
    {
        if (worldSize < 1)
            throw new ArgumentOutOfRangeException(nameof(worldSize), worldSize, "WorldSize must be at least 1.");
        WorldSize = worldSize;
        Timeout = timeout;
        _timeoutOption = timeoutOption;
        _arrived = new bool[worldSize];
        _buffers = new nint[worldSize];
        _lengths = new int[worldSize];
        _values = new long[worldSize];
        _entered = new (string, long)[worldSize];
    }

    public int WorldSize { get; }

    public TimeSpan Timeout { get; }

    /// <summary>Makes every waiting and future collective throw, naming <paramref name="rank"/> as the cause.</summary>
    public void Abort(int rank, Exception reason)
    {
        lock (_gate)
        {
            if (_abortReason is not null)
                return;
            _abortReason = reason;
            _abortingRank = rank;
            Monitor.PulseAll(_gate);
        }
    }

    public void AllReduce(int rank, float* buffer, int length, ReduceOperation operation) =>
        Reduce(rank, buffer, length, $"AllReduce ({operation})", operation == ReduceOperation.Sum ? (buffers, start, count) => RankSum.Sum(buffers, buffers, start, count) : MaxChunk);

    public void AllReduce(int rank, ushort* buffer, int length, ScalarType format) =>
        Reduce(rank, buffer, length, $"AllReduce ({format} sum)", (buffers, start, count) => RankSum.Sum(buffers, buffers, start, count, format));

    private delegate void ChunkReduction(nint[] buffers, int start, int count);

    // Rank r combines chunk r of every buffer in rank order and writes the result into all of them: the work is split
    // across threads and every rank ends with the same bits.
    private void Reduce(int rank, void* buffer, int length, string operation, ChunkReduction reduceChunk)
    {
        Publish(rank, buffer, length);
        Rendezvous(rank, operation, length);
        // Chunks are whole multiples of 16 values (64 bytes of fp32), so ranks seldom write the same cache line.
        var (start, count) = Chunking.Chunk(length, WorldSize, rank, alignment: 16);
        if (count > 0 && WorldSize > 1)
            reduceChunk(_buffers, start, count);
        Rendezvous(rank, operation, length);
    }

    private static void MaxChunk(nint[] buffers, int start, int count)
    {
        var result = new Span<float>((float*)buffers[0] + start, count);
        for (int other = 1; other < buffers.Length; other++)
            TensorPrimitives.Max(result, new ReadOnlySpan<float>((float*)buffers[other] + start, count), result);
        for (int other = 1; other < buffers.Length; other++)
            result.CopyTo(new Span<float>((float*)buffers[other] + start, count));
    }

    public void Broadcast(int rank, float* buffer, int length, int root)
    {
        if (root < 0 || root >= WorldSize)
            throw new ArgumentOutOfRangeException(nameof(root), root, $"Broadcast root must be a rank from 0 to {WorldSize - 1}.");
        Publish(rank, buffer, length);
        Rendezvous(rank, "Broadcast", length);
        if (rank != root)
            new ReadOnlySpan<float>((float*)_buffers[root], length).CopyTo(new Span<float>(buffer, length));
        Rendezvous(rank, "Broadcast", length);
    }

    public long[] AllGather(int rank, long value)
    {
        _values[rank] = value;
        Rendezvous(rank, "AllGather", 1);
        long[] all = (long[])_values.Clone();
        Rendezvous(rank, "AllGather", 1);
        return all;
    }

    public void Barrier(int rank) => Rendezvous(rank, "Barrier", 0);

    private void Publish(int rank, void* buffer, int length)
    {
        _buffers[rank] = (nint)buffer;
        _lengths[rank] = length;
    }

    /// <summary>
    /// Waits until all ranks arrive; throws if the group was aborted, the timeout passes, or the ranks entered different
    /// collectives or lengths (<paramref name="length"/> values; 0 for a barrier).
    /// </summary>
    private void Rendezvous(int rank, string operation, long length)
    {
        WaitForAll(rank, operation, length);
        if (Volatile.Read(ref _mismatch) is { } mismatch)
            throw new ZeroCommunicationException(rank, mismatch);
    }

    private void WaitForAll(int rank, string operation, long length)
    {
        long generation;
        lock (_gate)
        {
            ThrowIfAborted(rank, operation);
            if (_arrived[rank])
                throw new InvalidOperationException($"Rank {rank} entered {operation} twice in one round.");
            generation = _generation;
            _arrived[rank] = true;
            _entered[rank] = (operation, length);
            if (++_arrivedCount == WorldSize)
            {
                Array.Clear(_arrived);
                _arrivedCount = 0;
                Volatile.Write(ref _mismatch, Mismatch());
                Volatile.Write(ref _generation, generation + 1);
                Monitor.PulseAll(_gate);
                return;
            }
        }
        if (SharedMemorySpin.Until(() => Volatile.Read(ref _generation) != generation))
            return;

        lock (_gate)
        {
            var deadline = DateTime.UtcNow + Timeout;
            while (_generation == generation)
            {
                ThrowIfAborted(rank, operation);
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                {
                    var missing = Enumerable.Range(0, WorldSize).Where(r => !_arrived[r]);
                    var reason = new ZeroCommunicationException(rank,
                        $"Rank {rank} of {WorldSize} waited {Timeout} in {operation} for rank(s) {string.Join(", ", missing)}, " +
                        $"which did not arrive. Raise {_timeoutOption} if a step legitimately takes longer.");
                    _abortReason ??= reason;
                    _abortingRank = _abortingRank < 0 ? rank : _abortingRank;
                    Monitor.PulseAll(_gate);
                    throw reason;
                }
                Monitor.Wait(_gate, left);
            }
        }
    }

    // Null when every rank entered the same collective with the same length, else what each rank entered.
    private string? Mismatch()
    {
        if (_entered.All(entry => entry == _entered[0]))
            return null;
        string Entry(int r) => _entered[r].Operation == "Barrier" ? $"rank {r} entered Barrier" : $"rank {r} entered {_entered[r].Operation} of {_entered[r].Length} value(s)";
        return "The ranks met in different collectives: " + string.Join(", ", Enumerable.Range(0, WorldSize).Select(Entry)) +
            ". Every rank must call the same collectives in the same order with buffers of the same length.";
    }

    private void ThrowIfAborted(int rank, string operation)
    {
        if (_abortReason is not null)
        {
            throw new ZeroCommunicationException(rank,
                $"Rank {rank} stopped in {operation} because rank {_abortingRank} failed: {_abortReason.Message}", _abortReason);
        }
    }
}
