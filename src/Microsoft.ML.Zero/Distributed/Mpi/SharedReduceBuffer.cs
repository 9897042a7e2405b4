using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.Distributed.Mpi;

/// <summary>
/// A reduce buffer (fp32, or 16-bit floats) of MPI ranks on one machine: each rank's buffer is a file in /dev/shm that
/// every rank maps, so a sum over ranks reads the peers' values where they lie, with no copy into or out of MPI. The
/// files are unlinked as soon as every rank has mapped them (the mappings keep the memory), so nothing is left in
/// /dev/shm however the job ends. <see cref="AllReduce"/> takes two barriers, kept in the files too: each rank counts
/// the barriers it reached in its header and waits until every rank's count is as far (MPI_Barrier costs more than
/// summing a few MB here).
/// </summary>
internal sealed unsafe class SharedReduceBuffer : IDisposable
{
    /// <summary>Where the files are: /dev/shm, unless <see cref="MpiCommunicator.SharedMemoryFolderVariable"/> names another folder.</summary>
    public static string Folder => Environment.GetEnvironmentVariable(MpiCommunicator.SharedMemoryFolderVariable) is { Length: > 0 } folder ? folder : "/dev/shm";
    public const string FilePrefix = "Microsoft.ML.Zero.";

    // After the values, each rank's file holds the range and sequence number of the all-reduce the rank is in, so the
    // ranks can check that they sum the same range, and the number of barriers it reached.
    private const int HeaderBytes = 64;

    // Chunks are whole multiples of 64 bytes from the range's start, so ranks seldom write the same cache line.
    private const int ChunkAlignmentBytes = 64;

    // This rank's index among the buffers, and the job's rank of each buffer's owner (for messages).
    private readonly int _rank;
    private readonly int[] _jobRanks;
    private readonly long _count;
    private readonly int _valueBytes;
    private readonly Tensor[] _mappings;
    // Where each rank's buffer is mapped in this process.
    private readonly nint[] _buffers;
    private long _sequence;
    private int _barriers;
    private int _disposed;

    private SharedReduceBuffer(int rank, long count, ScalarType format, Tensor[] mappings, int[] jobRanks)
    {
        _rank = rank;
        _jobRanks = jobRanks;
        _count = count;
        Format = format;
        _valueBytes = ValueBytes(format);
        _mappings = mappings;
        _buffers = new nint[mappings.Length];
        for (int i = 0; i < mappings.Length; i++)
            _buffers[i] = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(mappings[i].bytes));
    }

    /// <summary>The type of the values: fp32, or bf16/fp16 summed as that type (each addition rounded to it).</summary>
    public ScalarType Format { get; }

    /// <summary>A view of this rank's values, in its own mapping: the buffer the caller fills and reduces.</summary>
    public Tensor CreateValues() => _mappings[_rank].narrow(0, 0, _count);

    /// <summary>This rank's file for a job whose rank 0 drew <paramref name="tag"/>.</summary>
    public static string FilePath(long tag, int rank) => Path.Combine(Folder, $"{FilePrefix}{tag:x}.{rank}");

    /// <summary>
    /// Creates this rank's file for <paramref name="count"/> values of <paramref name="format"/>, full size and zeroed,
    /// its memory reserved (so a full /dev/shm fails here, not later).
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="count">Values it holds.</param>
    /// <param name="format">Their type.</param>
    /// <param name="token">Written into the header, so peers that map the file can confirm it is this rank's.</param>
    public static void CreateFile(string path, long count, ScalarType format = ScalarType.Float32, long token = 0)
    {
        long bytes = count * ValueBytes(format) + HeaderBytes;
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
        // The header starts at the first 8-byte boundary after the values (mappings start on a page).
        file.Position = (count * ValueBytes(format) + 7) & ~7L;
        file.Position += TokenSlot * sizeof(long);
        file.Write(BitConverter.GetBytes(token));
    }

    // The header's longs: [0] range start, [1] range length, [2] sequence, [3] the barrier count (an int), [4] the token.
    private const int TokenSlot = 4;

    /// <summary>
    /// Throws unless every rank's mapping holds the token that rank wrote into its own file (<paramref name="tokens"/>,
    /// by index): a file of the right name that is not the peer's (another shared-memory namespace, a leftover) is
    /// caught here, before any barrier waits on it.
    /// </summary>
    public void RequireTokens(IReadOnlyList<long> tokens)
    {
        for (int other = 0; other < _buffers.Length; other++)
            if (Header(other)[TokenSlot] != tokens[other])
                throw new IOException($"rank {_jobRanks[other]}'s buffer in {Folder} is not the file that rank wrote: the ranks that share this host name do not share {Folder}");
    }

    /// <summary>
    /// Maps every rank's file (<paramref name="paths"/>, indexed by rank); each must exist at full size. In a job over
    /// several machines these are the ranks of this machine, and <paramref name="jobRanks"/> their ranks in the job.
    /// </summary>
    public static SharedReduceBuffer Map(int rank, long count, IReadOnlyList<string> paths, IReadOnlyList<int>? jobRanks = null,
        ScalarType format = ScalarType.Float32)
    {
        var mappings = new List<Tensor>();
        try
        {
            // Mapping a missing file would create it (libtorch's from_file): a peer that cannot see this folder would
            // leave a file of its own that no one reads or deletes.
            for (int i = 0; i < paths.Count; i++)
                if (!File.Exists(paths[i]))
                    throw new IOException($"rank {jobRanks?[i] ?? i}'s buffer {paths[i]} is not visible here: the ranks that share this host name " +
                        $"do not share {Folder} (a container started without --ipc host?)");
            foreach (string path in paths)
                mappings.Add(from_file(path, shared: true, size: count + HeaderBytes / ValueBytes(format), dtype: format));
            return new SharedReduceBuffer(rank, count, format, mappings.ToArray(), jobRanks?.ToArray() ?? Enumerable.Range(0, paths.Count).ToArray());
        }
        catch
        {
            foreach (var mapping in mappings)
                mapping.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Where <paramref name="values"/> start in this rank's values, or -1 when they do not lie wholly inside them or
    /// are of another size.
    /// </summary>
    public long OffsetOf<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        if (sizeof(T) != _valueBytes)
            return -1;
        fixed (T* data = values)
        {
            long bytes = (byte*)data - (byte*)_buffers[_rank];
            long offset = bytes / _valueBytes;
            return bytes >= 0 && bytes % _valueBytes == 0 && offset <= _count - values.Length ? offset : -1;
        }
    }

    /// <summary>Sums a chunk of this rank's buffer (<paramref name="count"/> values of <paramref name="format"/>) with the same chunk on the other machines of the job, in place.</summary>
    public delegate void ChunkReduction(nint values, int count, ScalarType format);

    /// <summary>
    /// Sums values [<paramref name="offset"/>, + <paramref name="length"/>) over all ranks' buffers in rank order, in
    /// place; every rank calls it with the same range. Rank r adds up chunk r of the range from every buffer and writes
    /// the sum into every buffer (no other rank touches chunk r meanwhile): every rank ends with the same bits. Each of
    /// the two barriers waits under <paramref name="guard"/> (the watchdog that ends a job whose peer stalls): the first
    /// until every rank's values are in, the second until every chunk is written, which also keeps a rank from changing
    /// its buffer (the next step's gradients) while a peer still reads it. In a job over several machines the ranks are
    /// those of this machine, and <paramref name="betweenMachines"/> sums each rank's chunk with the same chunk of the
    /// other machines' ranks before it is written into the others' buffers.
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

        var (start, count) = Chunking.Chunk(length, _buffers.Length, _rank, ChunkAlignmentBytes / _valueBytes);
        bool shared = _buffers.Length > 1;
        if (betweenMachines is null)
        {
            if (count > 0 && shared)
                SumChunk(_buffers, offset + start, count);
        }
        else
        {
            if (count > 0 && shared)
                SumChunk(_buffers.AsSpan(_rank, 1), offset + start, count);
            // Every rank takes part, with an empty chunk too: it is a collective of the ranks with this index on each machine.
            betweenMachines(Address(_rank, offset + start), count, Format);
            var sum = new ReadOnlySpan<byte>((void*)Address(_rank, offset + start), count * _valueBytes);
            for (int other = 0; other < _buffers.Length; other++)
            {
                if (other != _rank)
                    sum.CopyTo(new Span<byte>((void*)Address(other, offset + start), count * _valueBytes));
            }
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

    // Adds up [start, + count) of every rank's buffer into targets.
    private void SumChunk(ReadOnlySpan<nint> targets, long start, int count)
    {
        if (Format == ScalarType.Float32)
            RankSum.Sum(_buffers, targets, start, count);
        else
            RankSum.Sum(_buffers, targets, start, count, Format);
    }

    private nint Address(int rank, long index) => _buffers[rank] + (nint)(index * _valueBytes);

    private static int ValueBytes(ScalarType format) => format == ScalarType.Float32 ? sizeof(float) : sizeof(ushort);

    private long* Header(int rank) => (long*)((Address(rank, _count) + 7) & ~(nint)7);

    // The barriers the rank reached, a 32-bit word (as futexes need) after the all-reduce's range and sequence number.
    private int* BarrierCount(int rank) => (int*)(Header(rank) + 3);

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
