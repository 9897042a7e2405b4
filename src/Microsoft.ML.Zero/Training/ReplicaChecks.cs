using Microsoft.ML.Zero.Distributed;

namespace Microsoft.ML.Zero.Training;

/// <summary>Checks that every rank trains the same replica, each failing with a message that names the ranks that differ.</summary>
internal static class ReplicaChecks
{
    /// <summary>
    /// Ranks that built different models (say, label columns with different class counts in per-rank inputs) would
    /// exchange buffers of different lengths: compare the sizes first and name the odd ranks.
    /// </summary>
    public static void RequireSameModel(ICommunicator communicator, long trainableValues)
    {
        var counts = communicator.AllGather(trainableValues);
        if (Differing(counts) is { Count: > 0 } differing)
            throw new InvalidOperationException(
                $"The ranks built different models: rank 0's has {counts[0]} trainable values, " +
                string.Join(", ", differing.Select(rank => $"rank {rank}'s {counts[rank]}")) +
                ". Every rank must see the same columns and classes (the label's key type must have the same values everywhere).");
    }

    /// <summary>
    /// Precision Auto is resolved by each process on its own CPU; machines that differ in native bf16 would otherwise
    /// train one model in two precisions.
    /// </summary>
    public static void RequireSamePrecision(ICommunicator communicator, ZeroPrecision precision)
    {
        var precisions = communicator.AllGather((long)precision);
        if (Differing(precisions) is { Count: > 0 } differing)
            throw new InvalidOperationException(
                $"The ranks train in different precisions: rank 0 in {(ZeroPrecision)precisions[0]}, " +
                string.Join(", ", differing.Select(rank => $"rank {rank} in {(ZeroPrecision)precisions[rank]}")) +
                ". Precision Auto picks bf16 only on CPUs that compute it natively, so machines of different kinds choose differently: " +
                "set the precision explicitly (DeepSpeedOptions.Precision, bf16.enabled) for this job.");
    }

    /// <summary>
    /// Confirms that every rank ends with the same weights, bit for bit, from each rank's <paramref name="checksum"/> of
    /// its weights. A difference means the ranks did not take the same steps, and is an error naming the ranks.
    /// </summary>
    public static void RequireEqualWeights(ICommunicator communicator, ulong checksum)
    {
        if (Differing(communicator.AllGather((long)checksum)) is { Count: > 0 } differing)
            throw new ZeroCommunicationException(communicator.Rank,
                $"After training, rank(s) {string.Join(", ", differing)} hold weights that differ from rank 0's: the replicas drifted apart.");
    }

    private static List<int> Differing(long[] values) => Enumerable.Range(0, values.Length).Where(rank => values[rank] != values[0]).ToList();
}
