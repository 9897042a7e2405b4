using Microsoft.ML.Zero.Distributed;
using TorchSharp;

namespace Microsoft.ML.Zero.Training;

/// <summary>Trains one replica per in-process rank, each on its own thread with its share of the cores.</summary>
internal static class InProcessReplicas
{
    /// <summary>
    /// Runs <paramref name="train"/> for every rank's replica. If any rank fails, every replica is disposed and the
    /// failure is rethrown (as <see cref="ZeroRankFailedException"/> naming the rank).
    /// </summary>
    public static void Train<TModel>(TModel[] replicas, TimeSpan timeout, Action<TModel, ICommunicator> train) where TModel : torch.nn.Module
    {
        int worldSize = replicas.Length;
        try
        {
            using (TorchRuntime.ShareCoresAmongRanks(worldSize))
            {
                InProcessLauncher.Run(worldSize, timeout, communicator =>
                {
                    TorchRuntime.UseCoreShare(worldSize);
                    train(replicas[communicator.Rank], communicator);
                    return true;
                });
            }
        }
        catch
        {
            foreach (var replica in replicas)
                replica.Dispose();
            throw;
        }
    }
}
