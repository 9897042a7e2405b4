using System.Text.Json.Nodes;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.Tests;

/// <summary>Ranks that are about to take different optimizer steps stop before the step, naming them.</summary>
[TestClass]
public sealed class StepAgreementTests
{
    private static ShardedTraining Loop(int epochs, CheckpointStore checkpoints) =>
        new(TinyShardedRun.Rows, new BatchSizes(16, 8, 1), epochs, 5, TinyShardedRun.Settings) { Checkpoints = checkpoints, CheckpointEverySteps = 2 };

    [TestMethod]
    public void RanksResumingFromCheckpointsOfOneNameButOtherStepsAreRefusedBeforeTheirFirstStep()
    {
        // Node-local folders can hold checkpoints of the same name written by different runs: here rank 1's says step 5.
        using var first = new TempFolder("zero-steps-a-");
        using var second = new TempFolder("zero-steps-b-");
        TinyShardedRun.Run(_ => Loop(2, new CheckpointStore(first.Path, 2)), TimeSpan.FromSeconds(20));
        foreach (string file in Directory.GetFiles(first.Path, "*", SearchOption.AllDirectories))
        {
            string copy = Path.Combine(second.Path, Path.GetRelativePath(first.Path, file));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(file, copy);
        }
        string tag = File.ReadAllText(second.Combine("latest")).Trim();
        var state = JsonNode.Parse(File.ReadAllText(second.Combine(tag, "state.json")))!;
        state["GlobalStep"] = (long)state["GlobalStep"]! - 1;
        File.WriteAllText(second.Combine(tag, "state.json"), state.ToJsonString());

        var failure = Assert.ThrowsExactly<ZeroRankFailedException>(() => TinyShardedRun.Run(communicator =>
            Loop(3, new CheckpointStore(communicator.Rank == 0 ? first.Path : second.Path, 2)), TimeSpan.FromSeconds(20)));
        StringAssert.Contains(failure.Message, "The ranks are at different optimizer steps: rank 0 at step 7, rank 1 at step 6");
    }
}
