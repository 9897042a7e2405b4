using System.Runtime.InteropServices;
using System.Security.Cryptography;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.Distributed.Mpi;

/// <summary>
/// The ranks of an OpenMPI job (one process per rank, on one machine or many) over MPI_COMM_WORLD. MPI's blocking
/// collectives cannot time out and a dead peer is not reported to the survivors, so a watchdog guards every call: a
/// rank that waits longer than the timeout prints which collective it was in and aborts the whole job. A rank that
/// fails calls <see cref="Abort"/>, which makes mpirun end every process within about a second. Ranks on one machine
/// sum the gradients through shared memory (<see cref="SharedReduceBuffer"/>) rather than over MPI, unless the
/// environment variable <c>ZERO_MPI_SHARED_MEMORY</c> is 0; in a job over several machines, each with the same number
/// of ranks, MPI then carries only the sums between machines.
/// </summary>
internal sealed unsafe class MpiCommunicator : ICommunicator
{
    /// <summary>Set to 0 (or false, off) to all-reduce over MPI even when every rank runs on this machine.</summary>
    public const string SharedMemoryVariable = "ZERO_MPI_SHARED_MEMORY";

    /// <summary>The folder the ranks' shared buffers are created in, when not /dev/shm (for tests and unusual hosts).</summary>
    public const string SharedMemoryFolderVariable = "ZERO_MPI_SHARED_MEMORY_FOLDER";

    /// <summary>
    /// Ranks that give the same value run on one machine and share memory; the machine's name when unset. (Containers on
    /// one host that see different /dev/shm folders must give different values.)
    /// </summary>
    public const string HostVariable = "ZERO_MPI_HOST";
    private static readonly object InitLock = new();
    private static MpiCommunicator? _world;

    private readonly OpenMpiLibrary _mpi;
    private readonly Timer _watchdog;
    private TimeSpan _timeout;
    private string _operation = "";
    private readonly Lazy<nint> _bf16Sum;
    private readonly Lazy<nint> _fp16Sum;
    private readonly MpiLaunchEnvironment _launch;
    private readonly object _sharedLock = new();
    private SharedReduceBuffer[] _shared = Array.Empty<SharedReduceBuffer>();

    // In a job over several machines: the ranks with this rank's index on every machine, which sum the machines' chunks.
    private nint _sameIndexOnEachMachine;
    private SharedReduceBuffer.ChunkReduction? _betweenMachines;
    private long _sharedReductions;

    private MpiCommunicator(OpenMpiLibrary mpi, MpiLaunchEnvironment launch, TimeSpan timeout)
    {
        _mpi = mpi;
        _launch = launch;
        _timeout = timeout;
        int rank, size;
        Check(_mpi.CommRank(_mpi.CommWorld, &rank), -1, "MPI_Comm_rank");
        Check(_mpi.CommSize(_mpi.CommWorld, &size), -1, "MPI_Comm_size");
        Rank = rank;
        WorldSize = size;
        // MPI has no 16-bit float types: the values travel as uint16 and these operations add them as floats.
        _bf16Sum = new Lazy<nint>(() => CreateOperation(&SumBf16));
        _fp16Sum = new Lazy<nint>(() => CreateOperation(&SumFp16));
        _watchdog = new Timer(_ => Abort($"waited more than {_timeout} in {_operation} for the other ranks; one of them has failed or stalled"));
    }

    public int Rank { get; }

    public int WorldSize { get; }

    /// <summary>All-reduces done through shared memory since the process started (for tests and diagnostics).</summary>
    public long SharedMemoryReductions => Interlocked.Read(ref _sharedReductions);

    /// <summary>MPI_COMM_WORLD, initializing MPI on first use (finalized when the process exits).</summary>
    public static MpiCommunicator World(MpiLaunchEnvironment launch, TimeSpan timeout)
    {
        lock (InitLock)
        {
            if (_world is null)
            {
                var mpi = OpenMpiLibrary.Load();
                int initialized, provided;
                mpi.Initialized(&initialized);
                if (initialized == 0)
                {
                    OpenMpiTuning.Apply();
                    // MPI_Init waits for every process of the job, and MPI_Abort is not available before it returns:
                    // a rank that never arrives ends this process, which makes mpirun end the job.
                    using (new Timer(_ => ExitWaiting(launch, timeout), null, timeout, Timeout.InfiniteTimeSpan))
                        Check(mpi.InitThread(null, 0, OpenMpiLibrary.ThreadMultiple, &provided), -1, "MPI_Init_thread");
                    if (provided < OpenMpiLibrary.ThreadMultiple)
                        throw new ZeroCommunicationException(-1, $"This OpenMPI build provides thread level {provided}; MPI_THREAD_MULTIPLE (3) is needed, since ranks call MPI from worker threads.");
                    AppDomain.CurrentDomain.ProcessExit += (_, _) => FinalizeOnce(mpi);
                }
                _world = new MpiCommunicator(mpi, launch, timeout);
            }
            _world._timeout = timeout;
            return _world;
        }
    }

    public void AllReduce(Span<float> buffer, ReduceOperation operation)
    {
        nint op = operation == ReduceOperation.Sum ? _mpi.Sum : _mpi.Max;
        if (operation == ReduceOperation.Sum && ReducedInSharedMemory<float>(buffer, ScalarType.Float32))
            return;
        fixed (float* data = buffer)
            AllReduceOverMpi(data, buffer.Length, _mpi.Float, op, _mpi.CommWorld, "all-reduce");
    }

    public void AllReduce(Span<ushort> buffer, ScalarType format)
    {
        nint op = SixteenBitSum(format);
        if (ReducedInSharedMemory<ushort>(buffer, format))
            return;
        fixed (ushort* data = buffer)
            AllReduceOverMpi(data, buffer.Length, _mpi.UInt16, op, _mpi.CommWorld, "all-reduce");
    }

    // A span's length is an int, as MPI's counts are, so one call covers any buffer; the watchdog guards it.
    private void AllReduceOverMpi(void* data, int count, nint type, nint op, nint communicator, string operation)
    {
        using (Guard(operation))
            Check(_mpi.Allreduce(OpenMpiLibrary.InPlace, data, count, type, op, communicator), Rank, "MPI_Allreduce");
    }

    // Sums buffer through shared memory when it is a range of a shared buffer of its format: every rank reduces the same
    // range, at the same offset of its own buffer. Returns false when it is not.
    private bool ReducedInSharedMemory<T>(ReadOnlySpan<T> buffer, ScalarType format) where T : unmanaged
    {
        if (buffer.IsEmpty)
            return false;
        foreach (var shared in Volatile.Read(ref _shared))
        {
            if (shared.Format == format && shared.OffsetOf(buffer) is var offset and >= 0)
            {
                shared.AllReduce(offset, buffer.Length, () => Guard("all-reduce"), _betweenMachines);
                Interlocked.Increment(ref _sharedReductions);
                return true;
            }
        }
        return false;
    }

    public void Broadcast(Span<float> buffer, int root)
    {
        if (root < 0 || root >= WorldSize)
            throw new ArgumentOutOfRangeException(nameof(root), root, $"The root must be a rank from 0 to {WorldSize - 1}.");
        fixed (float* data = buffer)
        {
            using (Guard("broadcast"))
                Check(_mpi.Bcast(data, buffer.Length, _mpi.Float, root, _mpi.CommWorld), Rank, "MPI_Bcast");
        }
    }

    public long[] AllGather(long value)
    {
        var values = new long[WorldSize];
        fixed (long* result = values)
        {
            using (Guard("all-gather"))
                Check(_mpi.Allgather(&value, 1, _mpi.Int64, result, 1, _mpi.Int64, _mpi.CommWorld), Rank, "MPI_Allgather");
        }
        return values;
    }

    public void Barrier()
    {
        using (Guard("barrier"))
            Check(_mpi.Barrier(_mpi.CommWorld), Rank, "MPI_Barrier");
    }

    /// <summary>
    /// A buffer of <paramref name="count"/> values of <paramref name="format"/> in shared memory that the ranks on this machine all map (see <see cref="SharedReduceBuffer"/>): when every
    /// rank runs here, or when the job's machines each run the same number of ranks (then MPI sums each chunk between
    /// machines). Otherwise, or when <see cref="SharedMemoryVariable"/> is 0 on any rank or any rank cannot create its
    /// file, a plain tensor that all-reduces go over MPI for. Collective.
    /// </summary>
    public ReduceBuffer AllocateReduceBuffer(long count, ScalarType format = ScalarType.Float32)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ReduceBuffer Private(string? transport = null) => new(zeros(count, format), transport);
        // The same on every rank: every rank takes part in the agreement below, or none does.
        if (WorldSize == 1)
            return Private();
        var hosts = AllGather(HostKey());
        int[] machine = Enumerable.Range(0, WorldSize).Where(rank => hosts[rank] == hosts[Rank]).ToArray();
        var ranksPerMachine = hosts.GroupBy(host => host).Select(group => group.Count()).Distinct().ToArray();
        if (machine.Length == 1 && ranksPerMachine.Length == 1)
            return Private();
        if (ranksPerMachine.Length > 1)
            return Private($"over MPI, not through shared memory: the machines run different numbers of ranks ({string.Join(", ", ranksPerMachine.Order())})");

        // Each rank offers 1, or a reason to refuse (0: turned off, -1: no /dev/shm). Rank 0 offers the tag that names
        // the job's files instead: random, so no two jobs (or buffers of one job) on this machine share one.
        const long TurnedOff = 0, NoFolder = -1;
        long tag = RandomNumberGenerator.GetInt32(1, int.MaxValue) * (1L << 20) + RandomNumberGenerator.GetInt32(1 << 20);
        var offers = AllGather(
            Environment.GetEnvironmentVariable(SharedMemoryVariable)?.Trim().ToLowerInvariant() is "0" or "false" or "off" ? TurnedOff
            : !OperatingSystem.IsLinux() || !Directory.Exists(SharedReduceBuffer.Folder) ? NoFolder
            : Rank == 0 ? tag : 1);
        if (offers.Any(offer => offer <= 0))
        {
            var reasons = new List<string>();
            if (offers.Contains(TurnedOff))
                reasons.Add($"{SharedMemoryVariable}=0 on rank(s) {Ranks(offers, TurnedOff)}");
            if (offers.Contains(NoFolder))
                reasons.Add($"no {SharedReduceBuffer.Folder} on rank(s) {Ranks(offers, NoFolder)}");
            return Private($"over MPI, not through shared memory: {string.Join("; ", reasons)}");
        }
        tag = offers[0];

        string path = SharedReduceBuffer.FilePath(tag, Rank);
        // Each rank's file carries a token of its own; the others check it after mapping, so a peer whose file they do
        // not really share is found now, not at the first barrier.
        long token = RandomNumberGenerator.GetInt32(1, int.MaxValue) * (1L << 31) + RandomNumberGenerator.GetInt32(int.MaxValue);
        string? failure = Attempt(() => SharedReduceBuffer.CreateFile(path, count, format, token), "create its gradient buffer");
        bool ownFile = failure is null;
        var created = AllGather(ownFile ? token : 0);
        SharedReduceBuffer? shared = null;
        if (Array.IndexOf(created, 0L) < 0)
        {
            var paths = machine.Select(rank => SharedReduceBuffer.FilePath(tag, rank)).ToArray();
            failure = Attempt(() =>
            {
                shared = SharedReduceBuffer.Map(Array.IndexOf(machine, Rank), count, paths, machine, format);
                shared.RequireTokens(machine.Select(rank => created[rank]).ToArray());
            }, "map the ranks' gradient buffers");
        }
        // Once every rank has mapped every file (or given up), the names are not needed: the mappings keep the memory.
        var mapped = AllGather(failure is null ? 1 : 0);
        if (ownFile)
            File.Delete(path);
        var failed = Array.IndexOf(created, 0L) >= 0 ? created : mapped;
        if (Array.IndexOf(failed, 0L) >= 0)
        {
            shared?.Dispose();
            return Private($"over MPI, not through shared memory: rank(s) {Ranks(failed, 0)} could not place a buffer there (see their error output)");
        }

        int machines = WorldSize / machine.Length;
        if (machines > 1 && _sameIndexOnEachMachine == 0)
        {
            // Split once, by the rank's index on its machine; every rank gets here together (this method is collective).
            nint communicator;
            using (Guard("MPI_Comm_split"))
                Check(_mpi.CommSplit(_mpi.CommWorld, Array.IndexOf(machine, Rank), Rank, &communicator), Rank, "MPI_Comm_split");
            _sameIndexOnEachMachine = communicator;
            _betweenMachines = SumBetweenMachines;
        }
        lock (_sharedLock)
            Volatile.Write(ref _shared, _shared.Append(shared!).ToArray());
        string where = machines == 1
            ? $"through shared memory: all {WorldSize} ranks run on this machine"
            : $"through shared memory on each machine ({machine.Length} ranks each), and over MPI between the {machines} machines";
        return new ReduceBuffer(shared!.CreateValues(),
            $"{where} ({SharedReduceBuffer.FilePath(tag, 0)[..^1]}*, removed once mapped)",
            () => Release(shared));
    }

    // Which machine this rank runs on, as a number every rank can compare: a 64-bit hash of its name.
    private static long HostKey()
    {
        string host = Environment.GetEnvironmentVariable(HostVariable) is { Length: > 0 } name ? name : Environment.MachineName;
        return (long)Fnv1a.Hash(host.AsSpan());
    }

    // Sums this rank's chunk with the same chunk on the other machines (the ranks with this rank's index there).
    private void SumBetweenMachines(nint values, int count, ScalarType format)
    {
        var (type, op) = format == ScalarType.Float32 ? (_mpi.Float, _mpi.Sum) : (_mpi.UInt16, SixteenBitSum(format));
        AllReduceOverMpi((void*)values, count, type, op, _sameIndexOnEachMachine, "all-reduce between machines");
    }

    // Runs one step of setting up a shared buffer; a failure is reported on this rank's error output and returned.
    private string? Attempt(Action step, string what)
    {
        try
        {
            step();
            return null;
        }
        catch (Exception exception)
        {
            Console.Error.WriteLine($"Microsoft.ML.Zero: rank {Rank} of {WorldSize} could not {what} in " +
                $"{SharedReduceBuffer.Folder} ({exception.Message}); the job all-reduces over MPI instead.");
            return exception.Message;
        }
    }

    private void Release(SharedReduceBuffer shared)
    {
        lock (_sharedLock)
            Volatile.Write(ref _shared, _shared.Where(s => s != shared).ToArray());
        shared.Dispose();
    }

    private static string Ranks(long[] values, long value) =>
        string.Join(", ", Enumerable.Range(0, values.Length).Where(rank => values[rank] == value));

    /// <summary>Prints why this rank stops, then ends every process of the job (MPI_Abort). Does not return.</summary>
    public void Abort(string reason)
    {
        Console.Error.WriteLine($"Microsoft.ML.Zero: rank {Rank} of {WorldSize} {reason}. Aborting the MPI job.");
        Console.Error.Flush();
        _mpi.Abort(_mpi.CommWorld, 1);
    }

    /// <summary>Unmaps the shared buffers still allocated (their values stay valid while tensors view them).</summary>
    public void Dispose()
    {
        lock (_sharedLock)
        {
            foreach (var shared in _shared)
                shared.Dispose();
            _shared = Array.Empty<SharedReduceBuffer>();
        }
    }

    // Arms the watchdog for one collective; disposing the scope disarms it.
    private WatchdogScope Guard(string operation)
    {
        _operation = operation;
        _watchdog.Change(_timeout, Timeout.InfiniteTimeSpan);
        return new WatchdogScope(_watchdog);
    }

    private readonly struct WatchdogScope(Timer watchdog) : IDisposable
    {
        public void Dispose() => watchdog.Change(Timeout.Infinite, Timeout.Infinite);
    }

    // MPI's sum of 16-bit floats of format, sent as uint16.
    private nint SixteenBitSum(ScalarType format) => format switch
    {
        ScalarType.BFloat16 => _bf16Sum.Value,
        ScalarType.Float16 => _fp16Sum.Value,
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "A 16-bit all-reduce needs Fp16 or Bf16."),
    };

    private nint CreateOperation(delegate* unmanaged<ushort*, ushort*, int*, nint*, void> function)
    {
        nint op;
        Check(_mpi.OpCreate((void*)function, 1, &op), Rank, "MPI_Op_create");
        return op;
    }

    [UnmanagedCallersOnly]
    private static void SumBf16(ushort* input, ushort* inputOutput, int* length, nint* datatype) =>
        HalfFloats.AddInto(new Span<ushort>(inputOutput, *length), new ReadOnlySpan<ushort>(input, *length), ScalarType.BFloat16);

    [UnmanagedCallersOnly]
    private static void SumFp16(ushort* input, ushort* inputOutput, int* length, nint* datatype) =>
        HalfFloats.AddInto(new Span<ushort>(inputOutput, *length), new ReadOnlySpan<ushort>(input, *length), ScalarType.Float16);

    private static void Check(int result, int rank, string call)
    {
        if (result != 0)
            throw new ZeroCommunicationException(rank, $"Rank {rank}: {call} failed with MPI error code {result}.");
    }

    private static void ExitWaiting(MpiLaunchEnvironment launch, TimeSpan timeout)
    {
        Console.Error.WriteLine($"Microsoft.ML.Zero: rank {launch.Rank} of {launch.WorldSize} waited more than {timeout} in MPI initialization " +
            "for the other ranks; one of them has failed or stalled. Ending this process so that mpirun ends the job.");
        Console.Error.Flush();
        Environment.Exit(1);
    }

    private static void FinalizeOnce(OpenMpiLibrary mpi)
    {
        int finalized;
        mpi.Finalized(&finalized);
        if (finalized == 0)
            mpi.Finalize();
    }
}
