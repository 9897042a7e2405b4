namespace Microsoft.ML.Zero.Tests;

/// <summary>The ML.NET trainer driven by DeepSpeed settings: conflicts and progress lines (accumulation and precision from a ds_config are data rows of MlpTrainerTests).</summary>
[TestClass]
public sealed class TrainerDeepSpeedTests
{
    private static ZeroTrainerOptions Options(int worldSize, int batch, DeepSpeedOptions? deepSpeed) => new()
    {
        WorldSize = worldSize, BatchSize = batch, MaxEpoch = 3, Seed = 7, HiddenLayerSizes = new[] { 32, 16 }, LearningRate = 0.01, DeepSpeed = deepSpeed,
    };

    [TestMethod]
    public void ConflictingBatchSizesNameBothSettings()
    {
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Prepared(mlContext);
        var options = Options(2, 16, DeepSpeedOptions.FromDeepSpeedConfig("""{ "train_micro_batch_size_per_gpu": 8 }"""));
        var error = Assert.ThrowsExactly<ArgumentException>(() => mlContext.Zero().Trainer(options).Fit(data));
        StringAssert.Contains(error.Message, "ZeroTrainerOptions.BatchSize is 16");
        StringAssert.Contains(error.Message, "train_micro_batch_size_per_gpu to 8");

        var inconsistent = Options(2, 32, DeepSpeedOptions.FromDeepSpeedConfig("""{ "train_batch_size": 32, "gradient_accumulation_steps": 3 }"""));
        var batch = Assert.ThrowsExactly<ArgumentException>(() => mlContext.Zero().Trainer(inconsistent).Fit(data));
        StringAssert.Contains(batch.Message, "32 != 5 * 3 * 2");
    }

    [TestMethod]
    public void StepsPerPrintAndWallClockBreakdownShapeTheProgressLines()
    {
        var mlContext = new MLContext(seed: 0);
        var lines = TrainerLog.Capture(mlContext);
        // 150 rows in steps of 2 x 8 = 10 steps per epoch, 2 epochs: a line every 4 steps is 5 lines.
        var options = Options(2, 8, DeepSpeedOptions.FromDeepSpeedConfig("""{ "steps_per_print": 4, "wall_clock_breakdown": true, "wandb": { "enabled": false } }"""));
        options.MaxEpoch = 2;
        mlContext.Zero().Trainer(options).Fit(IrisFixtures.Prepared(mlContext));

        var progress = lines.Where(l => l.Contains(", step ", StringComparison.Ordinal)).ToList();
        Assert.AreEqual(5, progress.Count, string.Join("\n", lines));
        StringAssert.StartsWith(progress[0], "Epoch 1/2, step 4/10: loss ");
        StringAssert.Contains(progress[0], "samples/s");
        StringAssert.Contains(progress[0], "all-reduce");
        Assert.IsTrue(lines.Any(l => l.Contains("keys this trainer does not use were ignored: wandb", StringComparison.Ordinal)), "no warning for the unused key");
        Assert.IsTrue(lines.Any(l => l.Contains("micro-batch 8 x 1 accumulation step(s) = batch 16, Fp32", StringComparison.Ordinal)), "no summary of the settings");
    }
}
