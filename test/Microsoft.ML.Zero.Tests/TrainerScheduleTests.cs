using System.Globalization;
using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Engine;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// The schedule a trainer applies without a DeepSpeed <c>scheduler</c> block (LearningRateSchedulerType, WarmupRatio),
/// as the learning rate of every optimizer step shows it in the csv_monitor files; and how a ds_config's scheduler
/// takes its place.
/// </summary>
[TestClass]
public sealed class TrainerScheduleTests
{
    private const double Rate = 0.01;

    // 150 iris rows, 2 ranks x batch 8: 10 optimizer steps per epoch, 20 in all.
    private const int Steps = 20;

    private static ZeroTrainerOptions Options(string metrics, string scheduler = "") => new()
    {
        WorldSize = 2, BatchSize = 8, MaxEpoch = 2, Seed = 3, HiddenLayerSizes = new[] { 16 }, LearningRate = Rate, Progress = ZeroProgress.None,
        DeepSpeed = DeepSpeedOptions.FromDeepSpeedConfig($$"""
            { "csv_monitor": { "enabled": true, "output_path": "{{metrics}}", "job_name": "run" }{{scheduler}} }
            """),
    };

    // The learning rate of each optimizer step, as csv_monitor wrote it.
    private static double[] RatePerStep(string metrics) =>
        File.ReadAllLines(Path.Combine(metrics, "run", "Train_Samples_lr.csv")).Skip(1)
            .Select(line => double.Parse(line.Split(',')[1], CultureInfo.InvariantCulture)).ToArray();

    [TestMethod]
    public void LinearWarmsUpOverItsRatioOfTheStepsThenDecaysToZeroAtTheLastStep()
    {
        using var folder = new TempFolder("zero-schedule-");
        var mlContext = new MLContext(seed: 0);
        var log = TrainerLog.Capture(mlContext);
        var options = Options(folder.Path);
        options.LearningRateSchedulerType = ZeroSchedulerType.Linear;
        options.WarmupRatio = 0.22; // 4.4 steps, rounded up to 5
        mlContext.Zero().Trainer(options).Fit(IrisFixtures.Prepared(mlContext));

        // Hugging Face's get_linear_schedule_with_warmup: step k (from 1) has taken k - 1 steps before it.
        var expected = Enumerable.Range(1, Steps).Select(k => k - 1 < 5 ? Rate * (k - 1) / 5 : Rate * (Steps - (k - 1)) / (Steps - 5)).ToArray();
        var rates = RatePerStep(folder.Path);
        Assert.AreEqual(Steps, rates.Length);
        for (int k = 0; k < Steps; k++)
            Assert.AreEqual(expected[k], rates[k], 1e-15, $"step {k + 1}");
        Assert.AreEqual(0, rates[0], "the first step starts from 0");
        Assert.AreEqual(Rate, rates[5], 1e-15, "the peak follows the 5 warm-up steps");
        Assert.IsTrue(rates.Skip(5).Zip(rates.Skip(6)).All(p => p.Second < p.First), "the rate falls after the warm-up");
        Assert.AreEqual(Rate / 15, rates[^1], 1e-15, "the last step's rate is one step above 0");

        StringAssert.Contains(string.Join("\n", log), "AdamW lr 0.01 with linear decay after 22% warm-up");
        StringAssert.Contains(string.Join("\n", log), "10 optimizer steps per epoch, learning rate with linear decay after 22% warm-up (5 of 20 steps).");
    }

    [TestMethod]
    public void ConstantKeepsTheRateFlatAndStaysTheMlpDefault()
    {
        Assert.AreEqual(ZeroSchedulerType.Constant, new ZeroTrainerOptions().LearningRateSchedulerType);
        Assert.AreEqual(ZeroSchedulerType.Linear, new ZeroTextClassificationOptions().LearningRateSchedulerType);
        Assert.AreEqual(0.06, new ZeroTextClassificationOptions().WarmupRatio);

        using var folder = new TempFolder("zero-schedule-");
        var mlContext = new MLContext(seed: 0);
        var log = TrainerLog.Capture(mlContext);
        mlContext.Zero().Trainer(Options(folder.Path)).Fit(IrisFixtures.Prepared(mlContext));
        var rates = RatePerStep(folder.Path);
        Assert.AreEqual(Steps, rates.Length);
        Assert.IsTrue(rates.All(rate => rate == Rate), string.Join(", ", rates));
        Assert.IsFalse(log.Any(line => line.Contains("learning rate with", StringComparison.Ordinal)), "a constant rate names no schedule");
    }

    [TestMethod]
    public void ADeepSpeedSchedulerReplacesTheTextTrainersDefaultSchedule()
    {
        // The text trainer's values: Linear by default, given as the default.
        var text = TrainerValues.AdamW(16, 5e-5) with { Scheduler = ZeroSchedulerType.Linear, WarmupRatio = 0.06 };
        var none = EngineConfiguration.Resolve("ZeroTextClassificationOptions", new DeepSpeedOptions(), text, text, 1, null);
        Assert.AreEqual(0.06, ((LinearScheduleWithWarmup)none.Settings.Scheduler!).WarmupRatio);

        var configured = DeepSpeedOptions.FromDeepSpeedConfig("""{ "scheduler": { "type": "WarmupLR", "params": { "warmup_num_steps": 4 } } }""");
        var resolved = EngineConfiguration.Resolve("ZeroTextClassificationOptions", configured, text, text, 1, null);
        Assert.AreEqual(4, ((WarmupLR)resolved.Settings.Scheduler!).WarmupNumSteps);

        var constant = text with { Scheduler = ZeroSchedulerType.Constant };
        Assert.IsNull(EngineConfiguration.Resolve("ZeroTextClassificationOptions", new DeepSpeedOptions(), constant, text, 1, null).Settings.Scheduler);
    }

    [TestMethod]
    public void ADeepSpeedSchedulerDrivesTheStepsAndItsAutoWarmupTakesTheWarmupRatio()
    {
        using var folder = new TempFolder("zero-schedule-");
        var mlContext = new MLContext(seed: 0);
        var options = Options(folder.Path, """, "scheduler": { "type": "WarmupLR", "params": { "warmup_num_steps": "auto", "warmup_type": "linear" } }""");
        options.WarmupRatio = 0.25; // 5 of the 20 steps
        mlContext.Zero().Trainer(options).Fit(IrisFixtures.Prepared(mlContext));

        // DeepSpeed's WarmupLR: step k uses iteration k - 2, which is below 0 (rate 0) for the first step.
        var rates = RatePerStep(folder.Path);
        var expected = Enumerable.Range(1, Steps).Select(k => k - 2 < 0 ? 0 : Rate * Math.Min(1, (k - 2) / 5.0)).ToArray();
        for (int k = 0; k < Steps; k++)
            Assert.AreEqual(expected[k], rates[k], 1e-15, $"step {k + 1}");
    }

    [TestMethod]
    public void ATrainerScheduleThatADeepSpeedSchedulerWouldOverrideIsAConflictNamingBoth()
    {
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Prepared(mlContext);
        using var folder = new TempFolder("zero-schedule-");
        var linear = Options(folder.Path, """, "scheduler": { "type": "WarmupDecayLR", "params": { "warmup_num_steps": 3 } }""");
        linear.LearningRateSchedulerType = ZeroSchedulerType.Linear;
        var error = Assert.ThrowsExactly<ArgumentException>(() => mlContext.Zero().Trainer(linear).Fit(data));
        StringAssert.Contains(error.Message, "ZeroTrainerOptions.LearningRateSchedulerType is Linear but the DeepSpeed settings set scheduler to WarmupDecayLR");

        var warmup = Options(folder.Path, """, "scheduler": { "type": "WarmupDecayLR", "params": { "warmup_num_steps": 3 } }""");
        warmup.WarmupRatio = 0.1;
        error = Assert.ThrowsExactly<ArgumentException>(() => mlContext.Zero().Trainer(warmup).Fit(data));
        StringAssert.Contains(error.Message, "ZeroTrainerOptions.WarmupRatio is 0.1 but the DeepSpeed settings set scheduler to WarmupDecayLR, which sets its own warm-up");
        StringAssert.Contains(error.Message, "\"auto\" for scheduler.params.warmup_num_steps");
    }

    [TestMethod]
    public void AnAutoWarmupNeedsATrainerToFillItIn()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() =>
        {
            using var model = TorchSharp.torch.nn.Linear(2, 2);
            using var engine = ZeroEngine.Initialize(model, DeepSpeedOptions.FromDeepSpeedConfig("""{ "scheduler": { "type": "WarmupLR", "params": { "warmup_num_steps": "auto" } } }"""));
        });
        StringAssert.Contains(error.Message, "WarmupLR.WarmupNumSteps (scheduler.params.warmup_num_steps) is \"auto\"");
    }

    [TestMethod]
    [DataRow(-0.1)]
    [DataRow(1.5)]
    [DataRow(double.NaN)]
    public void AWarmupRatioOutsideZeroToOneIsRefusedNamingIt(double ratio)
    {
        var mlContext = new MLContext(seed: 0);
        var options = new ZeroTrainerOptions { WarmupRatio = ratio };
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().Trainer(options).Fit(IrisFixtures.Prepared(mlContext)));
        StringAssert.Contains(error.Message, "ZeroTrainerOptions.WarmupRatio is");
        StringAssert.Contains(error.Message, "expected in [0, 1]");
    }

    [TestMethod]
    [DataRow("linear")]
    [DataRow("auto warm-up")]
    [DataRow("warmup_num_steps")]
    public void RanksWhoseSchedulesDifferInASettingAreRefusedBeforeTheFirstStep(string differing)
    {
        LearningRateSchedule Schedule(int rank) => differing switch
        {
            "linear" => new LinearScheduleWithWarmup(rank == 0 ? 0.06 : 0.1),
            "auto warm-up" => new WarmupLR { WarmupNumSteps = null }.WithTrainerWarmup(rank == 0 ? 0.06 : 0.1),
            _ => new WarmupLR { WarmupNumSteps = rank == 0 ? 4 : 5 },
        };
        var failure = Assert.ThrowsExactly<ZeroRankFailedException>(() => TinyShardedRun.Run(communicator =>
            new ShardedTraining(TinyShardedRun.Rows, new BatchSizes(16, 8, 1), 2, 5, TinyShardedRun.Settings with { Scheduler = Schedule(communicator.Rank) }),
            TimeSpan.FromSeconds(20)));
        StringAssert.Contains(failure.Message, "The ranks differ in the learning-rate schedule: rank(s) 1 differ from rank 0");
    }

    [TestMethod]
    public void RanksWhoseLossSettingsDifferAreRefusedBeforeTheFirstStep()
    {
        var failure = Assert.ThrowsExactly<ZeroRankFailedException>(() => TinyShardedRun.Run(communicator =>
            new ShardedTraining(TinyShardedRun.Rows, new BatchSizes(16, 8, 1), 2, 5, TinyShardedRun.Settings)
            {
                LossSettings = communicator.Rank == 0 ? "class weights balanced, label smoothing 0" : "class weights none, label smoothing 0",
            }, TimeSpan.FromSeconds(20)));
        StringAssert.Contains(failure.Message, "The ranks differ in the loss: rank(s) 1 differ from rank 0");
    }

    [TestMethod]
    public void ARunStoppedMidwayResumesTheLinearScheduleToTheWeightsOfAnUninterruptedRun()
    {
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Prepared(mlContext);
        using var directory = new TempFolder("zero-schedule-resume-");
        ZeroTrainerOptions Resumable(string? checkpoints) => new()
        {
            WorldSize = 2, BatchSize = 8, MaxEpoch = 2, Seed = 3, HiddenLayerSizes = new[] { 16 }, LearningRate = Rate, Progress = ZeroProgress.None,
            LearningRateSchedulerType = ZeroSchedulerType.Linear, WarmupRatio = 0.25, CheckpointDirectory = checkpoints, CheckpointEverySteps = checkpoints is null ? 0 : 3,
        };
        float[] Train(ZeroTrainerOptions options, IDataView input)
        {
            var replicas = mlContext.Zero().Trainer(options).TrainReplicas(input, out _);
            var weights = IrisFixtures.Weights(replicas[0]);
            foreach (var replica in replicas)
                replica.Dispose();
            return weights;
        }
        float[] uninterrupted = Train(Resumable(null), data);

        // One pass counts the rows, then each rank reads each epoch: the fourth read of 150 rows is epoch 2.
        int read = 0;
        var failing = mlContext.Data.FilterByCustomPredicate<IrisFeatures>(data, _ => Interlocked.Increment(ref read) > 150 * 3 ? throw new IOException("the disk went away") : false);
        Assert.ThrowsExactly<ZeroRankFailedException>(() => Train(Resumable(directory.Path), failing));
        Assert.AreEqual("global_step9", File.ReadAllText(directory.Combine("latest")), "the last checkpoint before epoch 2");

        CollectionAssert.AreEqual(uninterrupted, Train(Resumable(directory.Path), data));
    }
}
