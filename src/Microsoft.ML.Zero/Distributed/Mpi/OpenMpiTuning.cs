using System.Runtime.InteropServices;

namespace Microsoft.ML.Zero.Distributed.Mpi;

/// <summary>
/// Settings that make OpenMPI's all-reduce of large gradient buffers several times faster on one machine, applied
/// before MPI_Init unless the user set them. Measured for 2 ranks and 440 MB: 1.1 s by default, 0.12 s once glibc keeps
/// freed memory instead of unmapping it (OpenMPI's reduction buffers are otherwise mapped and faulted in on every call),
/// less again with the segmented ring all-reduce.
/// </summary>
internal static class OpenMpiTuning
{
    private const int MallocTrimThreshold = -1, MallocMmapMax = -4;

    private static readonly (string Name, string Value)[] RingAllReduce =
    {
        ("OMPI_MCA_coll_tuned_use_dynamic_rules", "1"),
        ("OMPI_MCA_coll_tuned_allreduce_algorithm", "5"),
        ("OMPI_MCA_coll_tuned_allreduce_algorithm_segmentsize", "1048576"),
    };

    public static void Apply()
    {
        // The environment variables MALLOC_MMAP_MAX_ / MALLOC_TRIM_THRESHOLD_ are read at process start; mallopt sets
        // the same for a process already running.
        if (Environment.GetEnvironmentVariable("MALLOC_MMAP_MAX_") is null)
            Mallopt(MallocMmapMax, 0);
        if (Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") is null)
            Mallopt(MallocTrimThreshold, int.MaxValue);
        // OpenMPI reads its MCA parameters from the native environment in MPI_Init.
        if (RingAllReduce.All(setting => Environment.GetEnvironmentVariable(setting.Name) is null))
            foreach (var (name, value) in RingAllReduce)
                SetEnvironmentVariable(name, value, overwrite: 0);
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int Mallopt(int parameter, int value);

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnvironmentVariable(string name, string value, int overwrite);
}
