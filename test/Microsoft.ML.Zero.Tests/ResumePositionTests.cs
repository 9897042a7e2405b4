using System.Text.Json.Nodes;
using Microsoft.ML.Zero.Distributed;

namespace Microsoft.ML.Zero.Tests;

/// <summary>A checkpoint whose epoch or step lies outside the run that resumes it is refused, naming both.</summary>
[TestClass]
public sealed class ResumePositionTests
{
    // 150 iris rows, 2 ranks x 8: 10 steps per epoch, 2 epochs; a checkpoint every 4 steps.
    private static ZeroTrainerOptions Options(string checkpoints) => new()
    {
        WorldSize = 2, BatchSize = 8, MaxEpoch = 2, Seed = 7, HiddenLayerSizes = new[] { 8 }, CheckpointDirectory = checkpoints, CheckpointEverySteps = 4,
    };

    [TestMethod]
    [DataRow("Epoch", 9)]
    [DataRow("StepInEpoch", 10)]
    [DataRow("StepInEpoch", 99)]
    public void APositionOutsideTheRunIsRefused(string field, int value)
    {
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Prepared(mlContext);
        using var folder = new TempFolder("zero-resume-position-");
        mlContext.Zero().Trainer(Options(folder.Path)).TrainReplicas(data, out _);

        string state = folder.Combine(File.ReadAllText(folder.Combine("latest")).Trim(), "state.json");
        var root = JsonNode.Parse(File.ReadAllText(state))!;
        root[field] = value;
        File.WriteAllText(state, root.ToJsonString());

        var failure = Assert.ThrowsExactly<ZeroRankFailedException>(() => mlContext.Zero().Trainer(Options(folder.Path)).TrainReplicas(data, out _));
        Assert.IsInstanceOfType<InvalidDataException>(failure.InnerException);
        StringAssert.Contains(failure.Message, "this run has 2 epoch(s) of 10 step(s)");
    }
}
