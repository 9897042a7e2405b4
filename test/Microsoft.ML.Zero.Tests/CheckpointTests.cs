using Microsoft.ML.Zero.Distributed;

namespace Microsoft.ML.Zero.Tests;

/// <summary>Checkpoints written during training, and runs that resume from them.</summary>
[TestClass]
public sealed class CheckpointTests
{
    // 150 iris rows, 2 ranks x 8: 10 steps per epoch, 30 in all; bf16 with fp32 master weights, dropout, a schedule.
    private static ZeroTrainerOptions Options(string? checkpoints, int worldSize = 2, int batch = 8) => new()
    {
        WorldSize = worldSize, BatchSize = batch, MaxEpoch = 3, Seed = 7, HiddenLayerSizes = new[] { 32, 16 }, Dropout = 0.2f, LearningRate = 0.01,
        CheckpointDirectory = checkpoints, CheckpointEverySteps = checkpoints is null ? 0 : 3, KeepCheckpoints = 2,
        DeepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Bf16, Scheduler = new WarmupDecayLR { WarmupNumSteps = 5 } },
    };

    private static float[] Train(MLContext mlContext, ZeroTrainerOptions options, IDataView data)
    {
        var replicas = mlContext.Zero().Trainer(options).TrainReplicas(data, out _);
        var weights = IrisFixtures.Weights(replicas[0]);
        foreach (var replica in replicas)
            replica.Dispose();
        return weights;
    }

    // The data fails when read for the third epoch: one pass counts the rows, then each rank reads every epoch.
    private static IDataView FailingInEpoch3(MLContext mlContext, IDataView data)
    {
        int read = 0;
        return mlContext.Data.FilterByCustomPredicate<IrisFeatures>(data, _ =>
            Interlocked.Increment(ref read) > 150 * 5 ? throw new IOException("the disk went away") : false);
    }

    [TestMethod]
    public void ARunStoppedMidEpochResumesToTheSameWeightsAsAnUninterruptedRun()
    {
        var mlContext = new MLContext(seed: 0);
        var lines = TrainerLog.Capture(mlContext);
        var data = IrisFixtures.Prepared(mlContext);
        using var directory = new TempFolder("zero-checkpoints-");
        float[] uninterrupted = Train(mlContext, Options(null), data);

        var failure = Assert.ThrowsExactly<ZeroRankFailedException>(() => Train(mlContext, Options(directory.Path), FailingInEpoch3(mlContext, data)));
        StringAssert.Contains(failure.ToString(), "the disk went away");
        // Checkpoints every 3 steps: the last before the failure is step 18, in epoch 2 (steps 11-20); 2 are kept.
        // In bf16 the AdamW state is the flat optimizer's (optim_states.bin).
        Assert.AreEqual("global_step18", File.ReadAllText(directory.Combine("latest")));
        CollectionAssert.AreEquivalent(new[] { "global_step15", "global_step18", "latest" },
            Directory.GetFileSystemEntries(directory.Path).Select(Path.GetFileName).ToArray());
        CollectionAssert.IsSubsetOf(new[] { "state.json", "config.json", "model_states.bin", "optim_states.bin", "rng_rank0.bin", "rng_rank1.bin" },
            Directory.GetFiles(directory.Combine("global_step18")).Select(Path.GetFileName).ToArray());
        using (var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(directory.Combine("global_step18", "config.json"))))
        {
            Assert.AreEqual(16, config.RootElement.GetProperty("train_batch_size").GetInt32());
            Assert.AreEqual("Bf16", config.RootElement.GetProperty("precision").GetString());
            Assert.AreEqual("WarmupDecayLR", config.RootElement.GetProperty("scheduler").GetProperty("type").GetString());
            Assert.AreEqual(30, config.RootElement.GetProperty("scheduler").GetProperty("params").GetProperty("TotalNumSteps").GetInt32());
        }

        float[] resumed = Train(mlContext, Options(directory.Path), data);
        Assert.IsTrue(lines.Any(l => l.Contains("Resuming from", StringComparison.Ordinal) && l.Contains("epoch 2, step 8 of it, global step 18", StringComparison.Ordinal)),
            string.Join("\n", lines));
        CollectionAssert.AreEqual(uninterrupted, resumed, "resumed weights differ from the uninterrupted run's");
    }

    [TestMethod]
    public void ACheckpointResumesOnAnotherKindOfCpuWhereAutoPicksAnotherPrecisionAndTheLogSaysSo()
    {
        // Written where Auto picked bf16, resumed where it picks fp32: the fp32 master weights carry on, the log names both.
        var mlContext = new MLContext(seed: 0);
        var lines = TrainerLog.Capture(mlContext);
        var data = IrisFixtures.Prepared(mlContext);
        using var directory = new TempFolder("zero-checkpoints-");
        var auto = Options(directory.Path);
        auto.DeepSpeed!.Precision = ZeroPrecision.Auto;
        try
        {
            Environment.SetEnvironmentVariable("ZERO_NATIVE_BF16", "1");
            Assert.ThrowsExactly<ZeroRankFailedException>(() => Train(mlContext, auto, FailingInEpoch3(mlContext, data)));
            Environment.SetEnvironmentVariable("ZERO_NATIVE_BF16", "0");
            float[] resumed = Train(mlContext, auto, data);
            string resume = lines.Single(l => l.StartsWith("Resuming from", StringComparison.Ordinal));
            StringAssert.Contains(resume, "global step 18 (written in Bf16, now Fp32: the steps from here differ in rounding).");
            Assert.IsTrue(resumed.All(float.IsFinite), "the resumed fp32 run trained");
        }
        finally
        {
            Environment.SetEnvironmentVariable("ZERO_NATIVE_BF16", null);
        }
    }

    [TestMethod]
    public void ResumingOnOtherRanksNeedsTheSameGlobalBatch()
    {
        var mlContext = new MLContext(seed: 0);
        var lines = TrainerLog.Capture(mlContext);
        var data = IrisFixtures.Prepared(mlContext);
        using var directory = new TempFolder("zero-checkpoints-");
        Assert.ThrowsExactly<ZeroRankFailedException>(() => Train(mlContext, Options(directory.Path), FailingInEpoch3(mlContext, data)));

        var error = Assert.ThrowsExactly<ZeroRankFailedException>(() => Train(mlContext, Options(directory.Path, worldSize: 1, batch: 8), data));
        StringAssert.Contains(error.ToString(), "train_batch_size 16 (2 rank(s) x 8 x 1); this run has 8 (1 rank(s) x 8 x 1)");

        // One rank with batch 16 takes the same global steps: it continues the run.
        float[] weights = Train(mlContext, Options(directory.Path, worldSize: 1, batch: 16), data);
        Assert.IsTrue(weights.All(float.IsFinite));
        Assert.IsTrue(lines.Any(l => l.Contains("(written by 2 rank(s), now 1)", StringComparison.Ordinal)), string.Join("\n", lines));
        Assert.AreEqual("global_step30", File.ReadAllText(directory.Combine("latest")));
    }

    [TestMethod]
    public void CheckpointOptionsAreChecked()
    {
        var mlContext = new MLContext(seed: 0);
        var noFolder = new ZeroTrainerOptions { CheckpointEverySteps = 5 };
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().Trainer(noFolder));
        StringAssert.Contains(error.Message, "ZeroTrainerOptions.CheckpointDirectory");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().Trainer(new ZeroTrainerOptions { KeepCheckpoints = 0 }));

        using var directory = new TempFolder("zero-checkpoints-");
        File.WriteAllText(directory.Combine("latest"), "global_step99");
        var broken = Assert.ThrowsExactly<ZeroRankFailedException>(() => Train(mlContext, Options(directory.Path), IrisFixtures.Prepared(mlContext)));
        StringAssert.Contains(broken.ToString(), "'latest' names 'global_step99', which is missing or incomplete");
    }
}
