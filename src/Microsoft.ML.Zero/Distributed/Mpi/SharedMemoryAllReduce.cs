using System.IO.MemoryMappedFiles;
using System.Numerics.Tensors;

namespace Microsoft.ML.Zero.Distributed.Mpi;

/// <summary>
/// All-reduce through a shared-memory file for MPI ranks that all run on one machine: each rank copies its buffer into
/// its slot, rank r sums chunk r of every slot in rank order (so every rank gets the same bits, as in-process), and
/// every rank copies the result back. MPI carries only the three barriers. The file lives in /dev/shm, is preallocated
/// (so a full /dev/shm is an error up front, not a crash on first write), and is unlinked once every rank has mapped it.
/// </summary>
internal sealed unsafe class SharedMemoryAllReduce : IDisposable
{
    private const string Folder = "/dev/shm";
    private readonly ICommunicator _communicator;
    private readonly long _jobTag;
    private MemoryMappedFile? _file;
    private MemoryMappedViewAccessor? _view;
    private float* _slots;
    private long _slotLength;

    private SharedMemoryAllReduce(ICommunicator communicator, long jobTag)
    {
        _communicator = communicator;
        _jobTag = jobTag;
    }

    /// <summary>The shared-memory path for <paramref name="communicator"/>'s ranks, or null when /dev/shm is unavailable.</summary>
    public static SharedMemoryAllReduce? TryCreate(ICommunicator communicator)
    {
        // Rank 0 names the job's files; every rank learns the name, and whether every rank can use /dev/shm.
        double tag = communicator.Rank == 0 ? Random.Shared.NextInt64(1L << 52) : 0;
        double usable = Directory.Exists(Folder) ? 1 : 0;
        var tags = communicator.AllGather(tag);
        var usableOnRanks = communicator.AllGather(usable);
        return usableOnRanks.All(u => u == 1) ? new SharedMemoryAllReduce(communicator, (long)tags[0]) : null;
    }

    public void AllReduce(Span<float> buffer, ReduceOperation operation)
    {
        int world = _communicator.WorldSize, rank = _communicator.Rank;
        EnsureCapacity(buffer.Length);
        buffer.CopyTo(Slot(rank, buffer.Length));
        _communicator.Barrier();

        int size = (buffer.Length + world - 1) / world;
        int start = Math.Min(buffer.Length, rank * size), count = Math.Min(size, buffer.Length - start);
        if (count > 0)
        {
            var result = Slot(0, buffer.Length).Slice(start, count);
            for (int other = 1; other < world; other++)
            {
                var source = Slot(other, buffer.Length).Slice(start, count);
                if (operation == ReduceOperation.Sum)
                    TensorPrimitives.Add(result, source, result);
                else
                    TensorPrimitives.Max(result, source, result);
            }
        }
        _communicator.Barrier();
        Slot(0, buffer.Length).CopyTo(buffer);
        // Nobody may overwrite a slot for the next call before every rank has read the result.
        _communicator.Barrier();
    }

    private Span<float> Slot(int rank, int length) => new(_slots + rank * _slotLength, length);

    // Every rank calls with the same lengths in the same order, so all grow the mapping together.
    private void EnsureCapacity(int length)
    {
        if (length <= _slotLength)
            return;
        Unmap();
        long slotLength = Math.Max(length, 1 << 20);
        long bytes = slotLength * _communicator.WorldSize * sizeof(float);
        string path = Path.Combine(Folder, $"microsoft-ml-zero-{_jobTag}-{slotLength}");
        if (_communicator.Rank == 0)
        {
            using var create = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.ReadWrite, PreallocationSize = bytes,
            });
            create.SetLength(bytes);
        }
        _communicator.Barrier();
        _file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, bytes, MemoryMappedFileAccess.ReadWrite);
        _view = _file.CreateViewAccessor(0, bytes, MemoryMappedFileAccess.ReadWrite);
        byte* pointer = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        _slots = (float*)(pointer + _view.PointerOffset);
        _slotLength = slotLength;
        _communicator.Barrier();
        if (_communicator.Rank == 0)
            File.Delete(path); // the mappings stay; nothing is left behind if the job dies
    }

    private void Unmap()
    {
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _file?.Dispose();
        _view = null;
        _file = null;
        _slots = null;
        _slotLength = 0;
    }

    public void Dispose() => Unmap();
}
