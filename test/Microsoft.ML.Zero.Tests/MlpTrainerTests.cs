using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

[TestClass]
public sealed class MlpTrainerTests
{
    [TestMethod]
    [DataRow(null)] // typed options, fp32
    [DataRow("""{ "bf16": { "enabled": true }, "gradient_clipping": 1.0 }""")]
    public void MlpOnTwoRanksLearnsIrisFarBeyondTheMajorityClassAndReturnsAnFp32Model(string? dsConfig)
    {
        var mlContext = new MLContext(seed: 0);
        var split = IrisFixtures.Split(mlContext);
        var options = new ZeroTrainerOptions
        {
            WorldSize = 2, BatchSize = 8, MaxEpoch = 60, LearningRate = 0.01, HiddenLayerSizes = new[] { 16 },
            DeepSpeed = dsConfig is null ? null : DeepSpeedOptions.FromDeepSpeedConfig(dsConfig),
        };

        var model = IrisFixtures.Pipeline(mlContext, options).Fit(split.TrainSet);
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(split.TestSet));

        var testLabels = mlContext.Data.CreateEnumerable<IrisRow>(split.TestSet, reuseRowObject: false).Select(r => r.Label).ToList();
        double majority = testLabels.GroupBy(l => l).Max(g => g.Count()) / (double)testLabels.Count;
        Assert.IsTrue(metrics.MicroAccuracy >= 0.9, $"accuracy {metrics.MicroAccuracy:F3}");
        Assert.IsTrue(metrics.MicroAccuracy >= majority + 0.4, $"accuracy {metrics.MicroAccuracy:F3} vs majority class {majority:F3}");
        Assert.IsTrue(metrics.LogLoss < 0.5, $"log-loss {metrics.LogLoss:F3}");

        // Whatever the precision it trained in, the trainer hands back fp32 replicas, equal on every rank.
        var replicas = mlContext.Zero().Trainer(options).TrainReplicas(IrisFixtures.Prepared(mlContext), out _);
        try
        {
            Assert.IsTrue(replicas.All(r => r.parameters().All(p => p.dtype == ScalarType.Float32)), "the trained model is not fp32");
            CollectionAssert.AreEqual(IrisFixtures.Weights(replicas[0]), IrisFixtures.Weights(replicas[1]), "rank 1 differs from rank 0");
        }
        finally
        {
            foreach (var replica in replicas)
                replica.Dispose();
        }
    }

    [TestMethod]
    // 150 rows in global batches of 32: the last step of each epoch is short (22 rows, 6/6/5/5 per rank).
    [DataRow(4, 8, 1)]
    // 19 micro-steps of 8 rows over both ranks an epoch: 5 optimizer steps, the last of 3 micro-steps and 22 rows.
    [DataRow(2, 4, 4)]
    public void RanksWithAGlobalBatchOf32MatchOneRankWithBatch32AndEndBitwiseEqual(int worldSize, int microBatch, int accumulationSteps)
    {
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Prepared(mlContext);
        ZeroTrainerOptions Options(int ranks, int batch, DeepSpeedOptions? deepSpeed = null) => new()
        {
            WorldSize = ranks, BatchSize = batch, MaxEpoch = 3, Seed = 7, HiddenLayerSizes = new[] { 32, 16 }, LearningRate = 0.01, DeepSpeed = deepSpeed,
        };

        // The weights training starts from, as the trainer builds them from its seed: a run whose steps are far below
        // float resolution (a learning rate of 1e-30 moves no weight above about 1e-22) ends where it began.
        var standStill = Options(1, 32);
        standStill.LearningRate = 1e-30;
        var start = mlContext.Zero().Trainer(standStill).TrainReplicas(data, out _);
        var single = mlContext.Zero().Trainer(Options(1, 32)).TrainReplicas(data, out _);
        var typed = mlContext.Zero().Trainer(Options(worldSize, microBatch, new DeepSpeedOptions { GradientAccumulationSteps = accumulationSteps })).TrainReplicas(data, out _);
        var fromJson = mlContext.Zero().Trainer(Options(worldSize, microBatch, DeepSpeedOptions.FromDeepSpeedConfig($$"""
            { "train_batch_size": 32, "train_micro_batch_size_per_gpu": {{microBatch}}, "gradient_accumulation_steps": {{accumulationSteps}} }
            """))).TrainReplicas(data, out _);
        try
        {
            string shape = $"{worldSize} x {microBatch} x {accumulationSteps}";
            float[] reference = IrisFixtures.Weights(single[0]);
            float[] initial = IrisFixtures.Weights(start[0]);
            var perRank = typed.Select(IrisFixtures.Weights).ToArray();
            for (int rank = 1; rank < perRank.Length; rank++)
                CollectionAssert.AreEqual(perRank[0], perRank[rank], $"{shape}: rank {rank} differs from rank 0");
            double maxDiff = reference.Zip(perRank[0], (a, b) => Math.Abs(a - b)).Max();
            Assert.IsTrue(maxDiff <= 1e-5, $"max |1 x 32 - {shape}| = {maxDiff}");
            Assert.IsTrue(reference.Zip(initial, (a, b) => Math.Abs(a - b)).Max() > 1e-3, "training did not change the weights");
            CollectionAssert.AreEqual(perRank[0], IrisFixtures.Weights(fromJson[0]), $"{shape}: the ds_config and the typed options trained differently");
        }
        finally
        {
            foreach (var replica in start.Concat(single).Concat(typed).Concat(fromJson))
                replica.Dispose();
        }
    }

    [TestMethod]
    public void RunsWithDropoutOnTwoRanksRepeatExactly()
    {
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Prepared(mlContext);
        var options = new ZeroTrainerOptions { WorldSize = 2, BatchSize = 8, MaxEpoch = 2, Dropout = 0.3f, Seed = 3 };

        var first = mlContext.Zero().Trainer(options).TrainReplicas(data, out _);
        var second = mlContext.Zero().Trainer(options).TrainReplicas(data, out _);
        var noDropout = mlContext.Zero().Trainer(new ZeroTrainerOptions { WorldSize = 2, BatchSize = 8, MaxEpoch = 2, Seed = 3 }).TrainReplicas(data, out _);
        try
        {
            CollectionAssert.AreEqual(IrisFixtures.Weights(first[0]), IrisFixtures.Weights(first[1]), "ranks differ");
            CollectionAssert.AreEqual(IrisFixtures.Weights(first[0]), IrisFixtures.Weights(second[0]), "runs differ");
            CollectionAssert.AreNotEqual(IrisFixtures.Weights(first[0]), IrisFixtures.Weights(noDropout[0]), "dropout had no effect");
        }
        finally
        {
            foreach (var replica in first.Concat(second).Concat(noDropout))
                replica.Dispose();
        }
    }

    [TestMethod]
    public void SavedModelLoadsInAFreshProcessAndScoresIdentically()
    {
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Load(mlContext);
        var model = IrisFixtures.Pipeline(mlContext, new ZeroTrainerOptions { WorldSize = 2, MaxEpoch = 20, ScoringBatchSize = 16 }).Fit(data);
        using var folder = new TempFolder("zero-model-");
        string modelPath = folder.Combine("model.zip"), scoresPath = folder.Combine("scores.tsv");
        mlContext.Model.Save(model, data.Schema, modelPath);
        var expected = Program.ScoreLines(model.Transform(data)).ToArray();

        ChildProcess.RunTestAssembly(TimeSpan.FromMinutes(2), "score", modelPath, IrisFixtures.DataPath, scoresPath).AssertSucceeded();
        CollectionAssert.AreEqual(expected, File.ReadAllLines(scoresPath));
        Assert.AreEqual(150, expected.Length);
    }

    [TestMethod]
    public void PredictionEngineAndEvaluateAgreeWithBatchedScoring()
    {
        var mlContext = new MLContext(seed: 0);
        var rows = Datasets.Iris();
        var data = mlContext.Data.LoadFromEnumerable(rows);
        var model = IrisFixtures.Pipeline(mlContext, new ZeroTrainerOptions { MaxEpoch = 30, LearningRate = 0.01, ScoringBatchSize = 7 }).Fit(data);
        var scored = model.Transform(data);

        var batched = mlContext.Data.CreateEnumerable<IrisPrediction>(scored, reuseRowObject: false).ToArray();
        var engine = mlContext.Model.CreatePredictionEngine<IrisRow, IrisPrediction>(model);
        for (int i = 0; i < rows.Length; i += 13)
        {
            var single = engine.Predict(rows[i]);
            Assert.AreEqual(batched[i].PredictedLabel, single.PredictedLabel, $"row {i}");
            // One row and a batch of rows take different matrix kernels: equal up to rounding.
            for (int k = 0; k < single.Score.Length; k++)
                Assert.AreEqual(batched[i].Score[k], single.Score[k], 1e-6, $"row {i}, class {k}");
            Assert.AreEqual(1.0, single.Score.Sum(), 1e-5);
        }

        var slotNames = default(VBuffer<ReadOnlyMemory<char>>);
        scored.Schema["Score"].GetSlotNames(ref slotNames);
        CollectionAssert.AreEqual(new[] { "setosa", "versicolor", "virginica" }, slotNames.DenseValues().Select(n => n.ToString()).ToArray());
        var metrics = mlContext.MulticlassClassification.Evaluate(scored);
        Assert.AreEqual(3, metrics.ConfusionMatrix.NumberOfClasses);
        Assert.IsTrue(metrics.MicroAccuracy > 0.8, $"training accuracy {metrics.MicroAccuracy:F3}");
    }
}
