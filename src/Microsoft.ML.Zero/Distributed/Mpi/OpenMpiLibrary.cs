using System.Runtime.InteropServices;

namespace Microsoft.ML.Zero.Distributed.Mpi;

/// <summary>
/// The MPI functions the communicator calls, bound at run time from OpenMPI's libmpi.so.40 (no .NET MPI package runs
/// on Linux). OpenMPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are the addresses of exported globals, and
/// MPI_IN_PLACE is the address 1.
/// </summary>
internal sealed unsafe class OpenMpiLibrary
{
    public const string LibraryName = "libmpi.so.40";
    public const int ThreadMultiple = 3;
    public static readonly nint InPlace = 1;

    private OpenMpiLibrary(nint library)
    {
        nint Export(string name) => NativeLibrary.TryGetExport(library, name, out var address)
            ? address
            : throw new EntryPointNotFoundException($"{LibraryName} has no export '{name}'; is it OpenMPI's libmpi?");
        InitThread = (delegate* unmanaged<int*, nint, int, int*, int>)Export("MPI_Init_thread");
        Initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized");
        Finalized = (delegate* unmanaged<int*, int>)Export("MPI_Finalized");
        Finalize = (delegate* unmanaged<int>)Export("MPI_Finalize");
        CommRank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank");
        CommSize = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size");
        Allreduce = (delegate* unmanaged<nint, void*, int, nint, nint, nint, int>)Export("MPI_Allreduce");
        Bcast = (delegate* unmanaged<void*, int, nint, int, nint, int>)Export("MPI_Bcast");
        Allgather = (delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int>)Export("MPI_Allgather");
        Barrier = (delegate* unmanaged<nint, int>)Export("MPI_Barrier");
        Abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort");
        OpCreate = (delegate* unmanaged<void*, int, nint*, int>)Export("MPI_Op_create");
        CommSplit = (delegate* unmanaged<nint, int, int, nint*, int>)Export("MPI_Comm_split");
        CommWorld = Export("ompi_mpi_comm_world");
        Float = Export("ompi_mpi_float");
        Int64 = Export("ompi_mpi_int64_t");
        UInt16 = Export("ompi_mpi_uint16_t");
        Sum = Export("ompi_mpi_op_sum");
        Max = Export("ompi_mpi_op_max");
    }

    public delegate* unmanaged<int*, nint, int, int*, int> InitThread { get; }

    public delegate* unmanaged<int*, int> Initialized { get; }

    public delegate* unmanaged<int*, int> Finalized { get; }

    public delegate* unmanaged<int> Finalize { get; }

    public delegate* unmanaged<nint, int*, int> CommRank { get; }

    public delegate* unmanaged<nint, int*, int> CommSize { get; }

    public delegate* unmanaged<nint, void*, int, nint, nint, nint, int> Allreduce { get; }

    public delegate* unmanaged<void*, int, nint, int, nint, int> Bcast { get; }

    public delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int> Allgather { get; }

    public delegate* unmanaged<nint, int> Barrier { get; }

    public delegate* unmanaged<nint, int, int> Abort { get; }

    /// <summary>MPI_Op_create(function, commute, &amp;op): a reduction MPI calls back for each pair of buffers.</summary>
    public delegate* unmanaged<void*, int, nint*, int> OpCreate { get; }

    /// <summary>MPI_Comm_split(comm, color, key, &amp;newcomm): a communicator per color, ranked by key. Collective.</summary>
    public delegate* unmanaged<nint, int, int, nint*, int> CommSplit { get; }

    public nint CommWorld { get; }

    public nint Float { get; }

    public nint Int64 { get; }

    public nint UInt16 { get; }

    public nint Sum { get; }

    public nint Max { get; }

    public static OpenMpiLibrary Load()
    {
        if (!NativeLibrary.TryLoad(LibraryName, out var library))
            throw new DllNotFoundException(
                $"The process runs under an MPI launcher but OpenMPI's {LibraryName} could not be loaded. " +
                "Install OpenMPI (Debian/Ubuntu: apt-get install -y openmpi-bin libopenmpi-dev) on every machine of the job.");
        return new OpenMpiLibrary(library);
    }
}
