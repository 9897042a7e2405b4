using Microsoft.ML.Data;
using Microsoft.ML.Zero.Models;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

[TestClass]
public sealed class MlpTrainerTests
{
    [TestMethod]
    public void MlpOnTwoRanksLearnsIrisFarBeyondTheMajorityClass()
    {
        var mlContext = new MLContext(seed: 0);
        var split = IrisFixtures.Split(mlContext);
        var options = new ZeroTrainerOptions { WorldSize = 2, BatchSize = 8, MaxEpochs = 60, LearningRate = 0.01, HiddenLayerSizes = new[] { 16 } };

        var model = IrisFixtures.Pipeline(mlContext, options).Fit(split.TrainSet);
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(split.TestSet));

        var testLabels = mlContext.Data.CreateEnumerable<IrisRow>(split.TestSet, reuseRowObject: false).Select(r => r.Label).ToList();
        double majority = testLabels.GroupBy(l => l).Max(g => g.Count()) / (double)testLabels.Count;
        Assert.IsTrue(metrics.MicroAccuracy >= 0.9, $"accuracy {metrics.MicroAccuracy:F3}");
        Assert.IsTrue(metrics.MicroAccuracy >= majority + 0.4, $"accuracy {metrics.MicroAccuracy:F3} vs majority class {majority:F3}");
        Assert.IsTrue(metrics.LogLoss < 0.5, $"log-loss {metrics.LogLoss:F3}");
    }

    [TestMethod]
    public void FourRanksWithBatch8MatchOneRankWithBatch32AndEndBitwiseEqual()
    {
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Prepared(mlContext);
        // 150 rows in global batches of 32: the last step of each epoch is short (22 rows, 6/6/5/5 per rank).
        ZeroTrainerOptions Options(int worldSize, int batch) => new()
        {
            WorldSize = worldSize, BatchSize = batch, MaxEpochs = 3, Seed = 7, HiddenLayerSizes = new[] { 32, 16 }, LearningRate = 0.01,
        };

        // The weights training starts from, as the trainer builds them from its seed: a run whose steps are far below
        // float resolution (a learning rate of 1e-30 moves no weight above about 1e-22) ends where it began.
        var standStill = Options(1, 32);
        standStill.LearningRate = 1e-30;
        var start = mlContext.Zero().Trainer(standStill).TrainReplicas(data, out _);
        var single = mlContext.Zero().Trainer(Options(1, 32)).TrainReplicas(data, out _);
        var four = mlContext.Zero().Trainer(Options(4, 8)).TrainReplicas(data, out _);
        try
        {
            float[] reference = IrisFixtures.Weights(single[0]);
            float[] initial = IrisFixtures.Weights(start[0]);
            var perRank = four.Select(IrisFixtures.Weights).ToArray();
            for (int rank = 1; rank < perRank.Length; rank++)
                CollectionAssert.AreEqual(perRank[0], perRank[rank], $"rank {rank} differs from rank 0");
            double maxDiff = reference.Zip(perRank[0], (a, b) => Math.Abs(a - b)).Max();
            Assert.IsTrue(maxDiff <= 1e-5, $"max |1 rank - 4 ranks| = {maxDiff}");
            Assert.IsTrue(reference.Zip(initial, (a, b) => Math.Abs(a - b)).Max() > 1e-3, "training did not change the weights");
        }
        finally
        {
            foreach (var replica in start.Concat(single).Concat(four))
                replica.Dispose();
        }
    }

    [TestMethod]
    public void RunsWithDropoutOnTwoRanksRepeatExactly()
    {
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Prepared(mlContext);
        var options = new ZeroTrainerOptions { WorldSize = 2, BatchSize = 8, MaxEpochs = 2, Dropout = 0.3f, Seed = 3 };

        var first = mlContext.Zero().Trainer(options).TrainReplicas(data, out _);
        var second = mlContext.Zero().Trainer(options).TrainReplicas(data, out _);
        var noDropout = mlContext.Zero().Trainer(new ZeroTrainerOptions { WorldSize = 2, BatchSize = 8, MaxEpochs = 2, Seed = 3 }).TrainReplicas(data, out _);
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
        var model = IrisFixtures.Pipeline(mlContext, new ZeroTrainerOptions { WorldSize = 2, MaxEpochs = 20, ScoringBatchSize = 16 }).Fit(data);
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
        var model = IrisFixtures.Pipeline(mlContext, new ZeroTrainerOptions { MaxEpochs = 30, LearningRate = 0.01, ScoringBatchSize = 7 }).Fit(data);
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
