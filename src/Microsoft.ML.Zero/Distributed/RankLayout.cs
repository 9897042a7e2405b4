using TorchSharp;
using Microsoft.ML.Zero.Distributed.Mpi;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.Distributed;

/// <summary>
/// Where a trainer's ranks run: as threads of this process (the default), or, when an MPI launcher started the
/// process, one rank per process over MPI. The same program runs either way.
/// </summary>
internal abstract class RankLayout
{
    public abstract int WorldSize { get; }

    /// <summary>The ranks whose replicas live in this process.</summary>
    public abstract int[] LocalRanks { get; }

    /// <summary>True when a launcher started one process per rank (mpirun), so a signal reaches one rank's process.</summary>
    public abstract bool OneProcessPerRank { get; }

    /// <summary>True in the process that holds rank 0: the one that logs and writes files.</summary>
    public bool IsMainProcess => LocalRanks.Contains(0);

    /// <summary>
    /// One replica per local rank. Each gets its own dropout generator (seed + rank); the weights rank 0 draws right
    /// after seeding are the ones the engine broadcasts, so every layout starts from the same model.
    /// </summary>
    public TModel[] CreateReplicas<TModel>(int seed, Func<torch.Generator, TModel> create, out torch.Generator[] generators)
    {
        torch.manual_seed(seed);
        generators = LocalRanks.Select(rank => new torch.Generator((ulong)(uint)seed + (ulong)rank)).ToArray();
        return generators.Select(create).ToArray();
    }

    /// <summary>
    /// Runs <paramref name="train"/> for every local rank's replica (<paramref name="replicas"/>[i] is rank
    /// <see cref="LocalRanks"/>[i]). A failing rank stops every rank: replicas are disposed and the failure rethrown.
    /// </summary>
    public void Train<TModel>(TModel[] replicas, Action<TModel, ICommunicator> train) where TModel : torch.nn.Module
    {
        try
        {
            Run(communicator => train(replicas[Array.IndexOf(LocalRanks, communicator.Rank)], communicator));
        }
        catch
        {
            foreach (var replica in replicas)
                replica.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs <paramref name="rankMain"/> once per local rank, each with its communicator and its share of the cores
    /// (in-process ranks on their own threads). The first rank to fail stops the others; its failure is rethrown.
    /// </summary>
    public abstract void Run(Action<ICommunicator> rankMain);

    /// <summary>
    /// Runs a trainer's work in this process. Under MPI a failure anywhere in it (a bad row, out of memory) aborts the
    /// whole job with this rank and the reason, since the other ranks would otherwise wait in a collective forever.
    /// </summary>
    public abstract T Guard<T>(Func<T> work);

    /// <summary>
    /// MPI ranks when a launcher started this process, else <paramref name="worldSize"/> in-process ranks; the option
    /// names are the caller's, for errors.
    /// </summary>
    public static RankLayout Resolve(int worldSize, string worldSizeOption, TimeSpan timeout, string timeoutOption)
    {
        if (MpiLaunchEnvironment.Detect() is not { } launch)
            return new InProcess(worldSize, timeout, timeoutOption);
        if (launch.Launcher != "OpenMPI")
            throw new NotSupportedException(
                $"This process was started by {launch.Launcher} (rank {launch.Rank} of {launch.WorldSize}); Microsoft.ML.Zero's multi-process " +
                "ranks talk over OpenMPI. Start the job with OpenMPI's mpirun, or unset the launcher variables to train in-process.");
        if (worldSize != 1 && worldSize != launch.WorldSize)
            throw new ArgumentOutOfRangeException(worldSizeOption, worldSize,
                $"{worldSizeOption} is {worldSize} but mpirun started {launch.WorldSize} processes; under mpirun each process is one rank. " +
                $"Leave {worldSizeOption} at 1 or set it to {launch.WorldSize}.");
        return new OpenMpi(launch, timeout);
    }

    private sealed class InProcess(int worldSize, TimeSpan timeout, string timeoutOption) : RankLayout
    {
        public override int WorldSize => worldSize;

        public override bool OneProcessPerRank => false;

        public override int[] LocalRanks => Enumerable.Range(0, worldSize).ToArray();

        public override T Guard<T>(Func<T> work) => work();

        public override void Run(Action<ICommunicator> rankMain)
        {
            using (TorchRuntime.ShareCoresAmongRanks(worldSize))
            {
                InProcessLauncher.Run(worldSize, timeout, communicator =>
                {
                    TorchRuntime.UseCoreShare(worldSize);
                    rankMain(communicator);
                    return true;
                }, timeoutOption);
            }
        }
    }

    private sealed class OpenMpi(MpiLaunchEnvironment launch, TimeSpan timeout) : RankLayout
    {
        public override int WorldSize => launch.WorldSize;

        public override bool OneProcessPerRank => true;

        public override int[] LocalRanks => new[] { launch.Rank };

        public override void Run(Action<ICommunicator> rankMain)
        {
            var communicator = MpiCommunicator.World(launch, timeout);
            if (communicator.Rank != launch.Rank || communicator.WorldSize != launch.WorldSize)
                throw new InvalidOperationException(
                    $"MPI reports rank {communicator.Rank} of {communicator.WorldSize}; the launcher's environment says {launch.Rank} of {launch.WorldSize}.");
            // Processes on one machine share its cores.
            using (TorchRuntime.ShareCoresAmongRanks(launch.LocalSize))
                rankMain(communicator);
        }

        public override T Guard<T>(Func<T> work)
        {
            try
            {
                return work();
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                // The other ranks are blocked in a collective and MPI never tells them: take the whole job down. (A
                // cancellation is agreed by every rank at the same step: each process ends on its own.)
                MpiCommunicator.World(launch, timeout).Abort($"failed: {exception.GetType().Name}: {exception.Message}");
                throw;
            }
        }
    }
}
