namespace Microsoft.ML.Zero.Distributed.Mpi;

/// <summary>
/// Where this process sits in a job started by a launcher, read from the launcher's environment: OpenMPI's mpirun
/// (OMPI_COMM_WORLD_*), MPICH's Hydra (PMI_*), or torchrun-style variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE).
/// </summary>
internal sealed record MpiLaunchEnvironment(string Launcher, int Rank, int WorldSize, int LocalRank, int LocalSize)
{
    /// <summary>The job this process belongs to, or null when no launcher started it (in-process ranks).</summary>
    public static MpiLaunchEnvironment? Detect() => Detect(Environment.GetEnvironmentVariable);

    public static MpiLaunchEnvironment? Detect(Func<string, string?> variable)
    {
        int? Read(string name) => variable(name) is { Length: > 0 } text
            ? int.TryParse(text, out int value) && value >= 0 ? value
                : throw new InvalidOperationException($"The launcher variable {name} is '{text}'; expected a non-negative integer.")
            : null;
        MpiLaunchEnvironment? From(string launcher, string rank, string size, string localRank, string localSize) =>
            Read(rank) is { } r && Read(size) is { } s ? new(launcher, r, s, Read(localRank) ?? 0, Read(localSize) ?? 1) : null;

        return From("OpenMPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE")
            ?? From("MPICH", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS")
            ?? From("torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE");
    }
}
