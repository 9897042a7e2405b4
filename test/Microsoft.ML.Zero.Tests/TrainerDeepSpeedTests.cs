using Microsoft.ML.Zero.Models;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>The ML.NET trainer driven by DeepSpeed settings: accumulation, precision, ds_config files and conflicts.</summary>
[TestClass]
public sealed class TrainerDeepSpeedTests
{
    private static ZeroTrainerOptions Options(int worldSize, int batch, ZeroOptions? deepSpeed) => new()
    {
        WorldSize = worldSize, BatchSize = batch, MaxEpochs = 3, Seed = 7, HiddenLayerSizes = new[] { 32, 16 }, LearningRate = 0.01, DeepSpeed = deepSpeed,
    };

    [TestMethod]
    public void TwoRanksOfMicroBatch4WithFourAccumulationStepsMatchOneRankOfBatch32()
    {
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Prepared(mlContext);
        // 150 rows: each epoch has 19 micro-steps of 8 rows over both ranks, so 5 optimizer steps, the last of 3
        // micro-steps and 22 rows; one rank with batch 32 takes the same 5 steps over the same rows.
        var single = mlContext.Zero().Trainer(Options(1, 32, null)).TrainReplicas(data, out _);
        var typed = mlContext.Zero().Trainer(Options(2, 4, new ZeroOptions { GradientAccumulationSteps = 4 })).TrainReplicas(data, out _);
        var fromJson = mlContext.Zero().Trainer(Options(2, 4, ZeroOptions.FromDeepSpeedConfig(
            """{ "train_batch_size": 32, "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 4 }"""))).TrainReplicas(data, out _);
        try
        {
            float[] reference = IrisFixtures.Weights(single[0]);
            CollectionAssert.AreEqual(IrisFixtures.Weights(typed[0]), IrisFixtures.Weights(typed[1]), "ranks differ");
            double maxDiff = reference.Zip(IrisFixtures.Weights(typed[0]), (a, b) => Math.Abs(a - b)).Max();
            Assert.IsTrue(maxDiff <= 1e-5, $"max |1 x 32 - 2 x 4 x 4| = {maxDiff}");
            CollectionAssert.AreEqual(IrisFixtures.Weights(typed[0]), IrisFixtures.Weights(fromJson[0]), "the ds_config and the typed options trained differently");
        }
        finally
        {
            foreach (var replica in single.Concat(typed).Concat(fromJson))
                replica.Dispose();
        }
    }

    [TestMethod]
    public void Bf16TrainingLearnsIrisAndSavesAnFp32Model()
    {
        var mlContext = new MLContext(seed: 0);
        var split = IrisFixtures.Split(mlContext);
        var options = new ZeroTrainerOptions
        {
            WorldSize = 2, BatchSize = 8, MaxEpochs = 60, LearningRate = 0.01, HiddenLayerSizes = new[] { 16 },
            DeepSpeed = ZeroOptions.FromDeepSpeedConfig("""{ "bf16": { "enabled": true }, "gradient_clipping": 1.0 }"""),
        };
        var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(mlContext.Transforms.NormalizeMinMax("Features"))
            .Append(mlContext.Zero().Trainer(options));
        var model = pipeline.Fit(split.TrainSet);
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(split.TestSet));
        Assert.IsTrue(metrics.MicroAccuracy >= 0.9, $"bf16 accuracy {metrics.MicroAccuracy:F3}");

        var replicas = mlContext.Zero().Trainer(options).TrainReplicas(IrisFixtures.Prepared(mlContext), out _);
        try
        {
            Assert.IsTrue(replicas.All(r => r.parameters().All(p => p.dtype == ScalarType.Float32)), "the trained model is not fp32");
            CollectionAssert.AreEqual(IrisFixtures.Weights(replicas[0]), IrisFixtures.Weights(replicas[1]), "ranks differ");
        }
        finally
        {
            foreach (var replica in replicas)
                replica.Dispose();
        }
    }

    [TestMethod]
    public void ConflictingBatchSizesNameBothSettings()
    {
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Prepared(mlContext);
        var options = Options(2, 16, ZeroOptions.FromDeepSpeedConfig("""{ "train_micro_batch_size_per_gpu": 8 }"""));
        var error = Assert.ThrowsExactly<ArgumentException>(() => mlContext.Zero().Trainer(options).Fit(data));
        StringAssert.Contains(error.Message, "ZeroTrainerOptions.BatchSize is 16");
        StringAssert.Contains(error.Message, "train_micro_batch_size_per_gpu to 8");

        var inconsistent = Options(2, 32, ZeroOptions.FromDeepSpeedConfig("""{ "train_batch_size": 32, "gradient_accumulation_steps": 3 }"""));
        var batch = Assert.ThrowsExactly<ArgumentException>(() => mlContext.Zero().Trainer(inconsistent).Fit(data));
        StringAssert.Contains(batch.Message, "32 != 5 * 3 * 2");
    }

    [TestMethod]
    public void StepsPerPrintAndWallClockBreakdownShapeTheProgressLines()
    {
        var mlContext = new MLContext(seed: 0);
        var lines = TrainerLog.Capture(mlContext);
        // 150 rows in steps of 2 x 8 = 10 steps per epoch, 2 epochs: a line every 4 steps is 5 lines.
        var options = Options(2, 8, ZeroOptions.FromDeepSpeedConfig("""{ "steps_per_print": 4, "wall_clock_breakdown": true, "wandb": { "enabled": false } }"""));
        options.MaxEpochs = 2;
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
