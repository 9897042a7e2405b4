using static TorchSharp.torch;
using Microsoft.ML.Zero.Distributed;

namespace Microsoft.ML.Zero;

/// <summary>
/// One rank of a job started by <see cref="ZeroEngine.Launch"/>: a thread of this process (in-process ranks) or this
/// process (under mpirun). <see cref="ZeroEngine.Initialize"/> called on the rank's thread joins this rank's group.
/// </summary>
public sealed class ZeroRank
{
    // Model construction draws from libtorch's process-wide generator, which in-process ranks share: one at a time.
    private static readonly object CreationLock = new();

    internal ZeroRank(ICommunicator communicator, bool mainProcess)
    {
        Communicator = communicator;
        IsMainProcess = mainProcess;
    }

    /// <summary>This rank, from 0 to <see cref="WorldSize"/> - 1.</summary>
    public int Rank => Communicator.Rank;

    /// <summary>The number of ranks in the job.</summary>
    public int WorldSize => Communicator.WorldSize;

    /// <summary>True on the rank that should log and write files (rank 0).</summary>
    public bool IsMainProcess { get; }

    internal ICommunicator Communicator { get; }

    /// <summary>
    /// Builds this rank's model with libtorch's generator seeded with <paramref name="seed"/> on rank 0. The engine
    /// copies rank 0's weights to every rank, so the seed alone fixes the starting model; building under one lock keeps
    /// the other ranks' draws from interleaving with rank 0's.
    /// </summary>
    public T CreateModel<T>(int seed, Func<T> create) where T : nn.Module
    {
        ArgumentNullException.ThrowIfNull(create);
        lock (CreationLock)
        {
            if (Rank == 0)
                manual_seed(seed);
            return create();
        }
    }

    internal static void Run(RankLayout layout, Action<ZeroRank> train)
    {
        // Initialize, called on the rank's thread (or in tasks it starts), finds the rank's communicator there.
        layout.Run(communicator => LaunchedRank.Run(communicator, () => train(new ZeroRank(communicator, communicator.Rank == 0))));
    }
}
