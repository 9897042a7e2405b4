using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace Microsoft.ML.Zero.Distributed.Mpi;

/// <summary>
/// A reduce buffer of an MPI job whose ranks all run on one machine: each rank's buffer is a file in /dev/shm that
/// every rank maps, so a sum over ranks reads the peers' values where they lie, with no copy into or out of MPI. The
/// files are unlinked as soon as every rank has mapped them (the mappings keep the memory), so nothing is left in
/// /dev/shm however the job ends. <see cref="AllReduce"/> takes three barriers, kept in the files too: each rank counts
/// the barriers it reached in its header and waits until every rank's count is as far (MPI_Barrier costs more than
/// summing a few MB here).
/// </summary>
internal sealed unsafe class SharedReduceBuffer : IDisposable
{
    public const string Folder = "/dev/shm";
    public const string FilePrefix = "Microsoft.ML.Zero.";

    // After the values, each rank's file holds the range and sequence number of the all-reduce the rank is in, so the
    // ranks can check that they sum the same range, and the number of barriers it reached.
    private const int HeaderFloats = 16;

    // Chunks start on 64-byte boundaries.
    private const int ChunkAlignment = 16;

    // Ranks from 2 on sum their chunk in blocks of this many values (32 KB).
    private const int ScratchFloats = 8192;

    // This rank's index among the buffers, and the job's rank of each buffer's owner (for messages).
    private readonly int _rank;
    private readonly int[] _jobRanks;
    private readonly long _count;
    private readonly Tensor[] _mappings;
    private readonly float*[] _buffers;
    private long _sequence;
    private int _barriers;
    private int _disposed;

    private SharedReduceBuffer(int rank, long count, Tensor[] mappings, int[] jobRanks)
    {
        _rank = rank;
        _jobRanks = jobRanks;
        _count = count;
        _mappings = mappings;
        _buffers = new float*[mappings.Length];
        for (int i = 0; i < mappings.Length; i++)
            _buffers[i] = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(mappings[i].bytes));
    }

    /// <summary>A view of this rank's values, in its own mapping: the buffer the caller fills and reduces.</summary>
    public Tensor CreateValues() => _mappings[_rank].narrow(0, 0, _count);

    /// <summary>This rank's file for a job whose rank 0 drew <paramref name="tag"/>.</summary>
    public static string FilePath(long tag, int rank) => Path.Combine(Folder, $"{FilePrefix}{tag:x}.{rank}");

    /// <summary>Creates this rank's file, full size and zeroed, its memory reserved (so a full /dev/shm fails here, not later).</summary>
    public static void CreateFile(string path, long count)
    {
        long bytes = (count + HeaderFloats) * sizeof(float);
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.ReadWrite,
            Share = FileShare.ReadWrite,
        };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using var file = new FileStream(path, options);
        // tmpfs allocates pages on first write: a sparse file in a /dev/shm too small for it (Docker's default is 64 MB)
        // would kill the process with SIGBUS mid-step. posix_fallocate takes the pages now or fails with ENOSPC.
        int error = PosixFallocate((int)file.SafeFileHandle.DangerousGetHandle(), 0, bytes);
        if (error != 0)
        {
            file.Dispose();
            File.Delete(path);
            throw new IOException($"{Folder} could not hold {bytes / 1e6:F1} MB: {Marshal.GetPInvokeErrorMessage(error)}");
        }
    }

    /// <summary>
    /// Maps every rank's file (<paramref name="paths"/>, indexed by rank); each must exist at full size. In a job over
    /// several machines these are the ranks of this machine, and <paramref name="jobRanks"/> their ranks in the job.
    /// </summary>
    public static SharedReduceBuffer Map(int rank, long count, IReadOnlyList<string> paths, IReadOnlyList<int>? jobRanks = null)
    {
        var mappings = new List<Tensor>();
        try
        {
            foreach (string path in paths)
                mappings.Add(from_file(path, shared: true, size: count + HeaderFloats, dtype: ScalarType.Float32));
            return new SharedReduceBuffer(rank, count, mappings.ToArray(), jobRanks?.ToArray() ?? Enumerable.Range(0, paths.Count).ToArray());
        }
        catch
        {
            foreach (var mapping in mappings)
                mapping.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Where <paramref name="data"/> (<paramref name="length"/> values) starts in this rank's values, or -1 when it does
    /// not lie wholly inside them.
    /// </summary>
    public long OffsetOf(float* data, int length)
    {
        long offset = data - _buffers[_rank];
        return offset >= 0 && offset <= _count - length ? offset : -1;
    }

    /// <inheritdoc cref="OffsetOf(float*, int)"/>
    public long OffsetOf(ReadOnlySpan<float> values)
    {
        fixed (float* data = values)
            return OffsetOf(data, values.Length);
    }

    /// <summary>Sums a chunk of this rank's buffer with the same chunk on the other machines of the job, in place.</summary>
    public delegate void ChunkReduction(float* values, int count);

    /// <summary>
    /// Sums values [<paramref name="offset"/>, + <paramref name="length"/>) over all ranks' buffers in rank order, in
    /// place; every rank calls it with the same range. Rank r adds up chunk r of the range from every buffer into its
    /// own, then copies the other ranks' finished chunks: every rank ends with the same bits. Each of the three barriers
    /// waits under <paramref name="guard"/> (the watchdog that ends a job whose peer stalls); the last one keeps a rank
    /// from changing its buffer (the next step's gradients) while a peer still reads it. In a job over several machines
    /// the ranks are those of this machine, and <paramref name="betweenMachines"/> sums each rank's chunk with the same
    /// chunk of the other machines' ranks before the others copy it.
    /// </summary>
    public void AllReduce(long offset, int length, Func<IDisposable> guard, ChunkReduction? betweenMachines = null)
    {
        void barrier()
        {
            using (guard())
                Barrier();
        }

        long* header = Header(_rank);
        header[0] = offset;
        header[1] = length;
        header[2] = ++_sequence;
        Interlocked.MemoryBarrier();
        barrier();
        Interlocked.MemoryBarrier();
        for (int other = 0; other < _buffers.Length; other++)
        {
            long* theirs = Header(other);
            if (theirs[0] != offset || theirs[1] != length || theirs[2] != _sequence)
            {
                throw new ZeroCommunicationException(_jobRanks[_rank],
                    $"Rank {_jobRanks[_rank]}'s shared-memory all-reduce {_sequence} sums {length} values from {offset}, but rank {_jobRanks[other]}'s " +
                    $"all-reduce {theirs[2]} sums {theirs[1]} values from {theirs[0]}; every rank must reduce the same ranges in the same order.");
            }
        }

        var (start, count) = Chunk(length, _rank);
        if (count > 0 && _buffers.Length > 1)
            SumChunk(offset + start, count);
        // Every rank takes part, with an empty chunk too: it is a collective of the ranks with this index on each machine.
        betweenMachines?.Invoke(_buffers[_rank] + offset + start, count);
        Interlocked.MemoryBarrier();
        barrier();
        Interlocked.MemoryBarrier();
        for (int other = 0; other < _buffers.Length; other++)
        {
            if (other == _rank)
                continue;
            var (theirStart, theirCount) = Chunk(length, other);
            Read(other, offset + theirStart, theirCount).CopyTo(new Span<float>(_buffers[_rank] + offset + theirStart, theirCount));
        }
        Interlocked.MemoryBarrier();
        barrier();
    }

    // Publishes that this rank reached its next barrier and wakes the ranks waiting for it, then waits until every rank
    // has: spinning briefly, then sleeping on the peer's count with a futex, which the peer's arrival wakes at once.
    // (Yielding instead would keep the core from threads the rank needs, such as the JIT's or backward's, and a
    // descheduled peer would only run again at the next scheduler tick.) A stalled peer is caught by the guard's watchdog.
    private void Barrier()
    {
        int reached = unchecked(++_barriers);
        Interlocked.MemoryBarrier();
        int* own = BarrierCount(_rank);
        Volatile.Write(ref *own, reached);
        Futex.WakeAll(own);
        for (int other = 0; other < _buffers.Length; other++)
        {
            int* count = BarrierCount(other);
            if (SharedMemorySpin.Until(() => Reached(count, reached)))
                continue;
            while (!Reached(count, reached))
                Futex.Wait(count, Volatile.Read(ref *count));
        }
        Interlocked.MemoryBarrier();
    }

    // Whether the barrier count at count is at least reached (counts wrap around).
    private static bool Reached(int* count, int reached) => unchecked(Volatile.Read(ref *count) - reached) >= 0;

    // Adds chunk [start, + count) of every rank's buffer, in rank order, into this rank's.
    private void SumChunk(long start, int count)
    {
        int last = _buffers.Length - 1;
        if (_rank < 2)
        {
            // This rank's values are the first or second term: the running sum can live in its buffer from the start.
            var result = new Span<float>(_buffers[_rank] + start, count);
            TensorPrimitives.Add(Read(0, start, count), Read(1, start, count), result);
            for (int other = 2; other <= last; other++)
                TensorPrimitives.Add(result, Read(other, start, count), result);
            return;
        }
        // A later term: the running sum of each block lives in a small scratch buffer, and the last addition writes this
        // rank's buffer only after its values were added.
        float[] scratch = ArrayPool<float>.Shared.Rent(Math.Min(count, ScratchFloats));
        try
        {
            for (int done = 0; done < count; done += ScratchFloats)
            {
                int block = Math.Min(ScratchFloats, count - done);
                var sum = scratch.AsSpan(0, block);
                TensorPrimitives.Add(Read(0, start + done, block), Read(1, start + done, block), sum);
                for (int other = 2; other < last; other++)
                    TensorPrimitives.Add(sum, Read(other, start + done, block), sum);
                TensorPrimitives.Add(sum, Read(last, start + done, block), new Span<float>(_buffers[_rank] + start + done, block));
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scratch);
        }
    }

    private ReadOnlySpan<float> Read(int rank, long start, int count) => new(_buffers[rank] + start, count);

    private long* Header(int rank) => (long*)(((nint)(_buffers[rank] + _count) + 7) & ~(nint)7);

    // The barriers the rank reached, a 32-bit word (as futexes need) after the all-reduce's range and sequence number.
    private int* BarrierCount(int rank) => (int*)(Header(rank) + 3);

    private (int Start, int Count) Chunk(int length, int rank)
    {
        long size = (length + _buffers.Length - 1) / _buffers.Length;
        size = (size + ChunkAlignment - 1) / ChunkAlignment * ChunkAlignment;
        long start = Math.Min(length, rank * size);
        return ((int)start, (int)Math.Min(size, length - start));
    }

    /// <summary>Unmaps every rank's buffer (this rank's memory stays while tensors still view it).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        foreach (var mapping in _mappings)
            mapping.Dispose();
    }

    [DllImport("libc", EntryPoint = "posix_fallocate")]
    private static extern int PosixFallocate(int fd, long offset, long length);
}
