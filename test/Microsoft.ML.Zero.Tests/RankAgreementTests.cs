using System.Diagnostics;
using Microsoft.ML.Zero.Distributed;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>Ranks that disagree on what they are doing, or one that never arrives, end in an error that names them.</summary>
[TestClass]
public sealed class RankAgreementTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [TestMethod]
    public void RanksInDifferentCollectivesOfTheSameLengthFailNamingBothRanksAndBothOperations()
    {
        // Rank 0 gathers one value while rank 1 all-reduces one value: lengths agree, operations do not.
        var failure = Assert.ThrowsExactly<ZeroRankFailedException>(() => InProcessLauncher.Run(2, Timeout, communicator =>
        {
            if (communicator.Rank == 0)
                communicator.AllGather(7L);
            else
                communicator.AllReduce(new float[1], ReduceOperation.Sum);
            return true;
        }));
        StringAssert.Contains(failure.Message, "rank 0 entered AllGather of 1 value(s)");
        StringAssert.Contains(failure.Message, "rank 1 entered AllReduce (Sum) of 1 value(s)");
    }

    [TestMethod]
    public void ABarrierMetByAnAllReduceIsAnErrorRatherThanASumOfAStaleBuffer()
    {
        var failure = Assert.ThrowsExactly<ZeroRankFailedException>(() => InProcessLauncher.Run(2, Timeout, communicator =>
        {
            if (communicator.Rank == 0)
                communicator.Barrier();
            else
                communicator.AllReduce(new float[4], ReduceOperation.Sum);
            return true;
        }));
        StringAssert.Contains(failure.Message, "rank 0 entered Barrier");
        StringAssert.Contains(failure.Message, "rank 1 entered AllReduce (Sum) of 4 value(s)");
    }

    [TestMethod]
    public void BuffersOfDifferentLengthsAreStillNamedWithTheirRanks()
    {
        var failure = Assert.ThrowsExactly<ZeroRankFailedException>(() => InProcessLauncher.Run(2, Timeout, communicator =>
        {
            communicator.AllReduce(new float[10 + communicator.Rank], ReduceOperation.Sum);
            return true;
        }));
        StringAssert.Contains(failure.Message, "rank 0 entered AllReduce (Sum) of 10 value(s)");
        StringAssert.Contains(failure.Message, "rank 1 entered AllReduce (Sum) of 11 value(s)");
    }

    [TestMethod]
    public void LaunchReturnsWhenARankThatNeverReachesACollectiveOutlivesTheOthersFailure()
    {
        // Rank 0 waits for rank 1 in Initialize and times out; rank 1 is busy outside any collective for much longer.
        var communicationTimeout = TimeSpan.FromSeconds(3);
        var clock = Stopwatch.StartNew();
        var launch = Task.Run(() => ZeroEngine.Launch(2, rank =>
        {
            if (rank.Rank == 1)
                Thread.Sleep(TimeSpan.FromSeconds(60));
            using var model = rank.CreateModel(1, () => nn.Linear(2, 2));
            using var engine = ZeroEngine.Initialize(model);
        }, communicationTimeout));
        Assert.AreEqual(0, Task.WaitAny(launch, Task.Delay(TimeSpan.FromSeconds(30))), "Launch still waits for a rank that will not arrive");
        var failure = Assert.ThrowsExactly<ZeroRankFailedException>(() => launch.GetAwaiter().GetResult());
        StringAssert.Contains(failure.Message, "Rank 0 of 2 failed");
        StringAssert.Contains(failure.Message, "Rank(s) 1 still running");
        Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(25), $"Launch took {clock.Elapsed}");
    }
}
