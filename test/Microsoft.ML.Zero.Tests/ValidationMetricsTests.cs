using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Monitoring;

namespace Microsoft.ML.Zero.Tests;

/// <summary>The validation metrics: computed from sums over the ranks' shares, equal to one rank scoring every row, and to ML.NET's evaluator.</summary>
[TestClass]
public sealed class ValidationMetricsTests
{
    [TestMethod]
    public void MacroF1AveragesTheF1OfTheClassesThatOccurAsLabelOrPrediction()
    {
        var tally = new ClassificationTally(3);
        // Class 0: 3 right, 1 predicted as 1. Class 1: 1 right, 1 predicted as 0. Class 2 never occurs.
        foreach (var (truth, predicted) in new[] { (0, 0), (0, 0), (0, 0), (0, 1), (1, 1), (1, 0) })
            tally.Add(truth, predicted, truth == predicted ? 0.8 : 0.1);
        var metrics = ClassificationTally.Metrics(tally.Sums, 3);
        // F1 of class 0: 2*3 / (2*3 + 1 + 1) = 0.75; of class 1: 2*1 / (2*1 + 1 + 1) = 0.5.
        Assert.AreEqual((0.75 + 0.5) / 2, metrics[ZeroMetric.MacroF1], 1e-12);
        Assert.AreEqual(4 / 6.0, metrics[ZeroMetric.Accuracy], 1e-12);
        Assert.AreEqual(-(4 * Math.Log(0.8) + 2 * Math.Log(0.1)) / 6, metrics[ZeroMetric.LogLoss], 1e-12);
        Assert.AreEqual(6, metrics.Rows);
    }

    [TestMethod]
    [DataRow(2)]
    [DataRow(3)]
    [DataRow(7)]
    public void ShardedSumsMatchOneRankScoringEveryRowAndMLNetsEvaluator(int worldSize)
    {
        var mlContext = new MLContext(seed: 0);
        var split = mlContext.Data.TrainTestSplit(IrisFixtures.Prepared(mlContext), testFraction: 0.3, seed: 1);
        var options = new ZeroTrainerOptions { MaxEpoch = 3, Seed = 2, LearningRate = 0.01, HiddenLayerSizes = new[] { 8 } };
        using var model = mlContext.Zero().Trainer(options).Fit(split.TrainSet);
        var outputs = model.Outputs;
        var validation = new ClassificationValidation(mlContext, split.TestSet, options.LabelColumn, outputs,
            _ => new ZeroTransformer(model.Scorer, outputs, options.ScoringBatchSize));

        double[] one = validation.ShareSums(null!, 0, 1);
        double[] summed = new double[one.Length];
        for (int rank = 0; rank < worldSize; rank++)
        {
            var share = validation.ShareSums(null!, rank, worldSize);
            for (int i = 0; i < share.Length; i++)
                summed[i] += share[i];
        }
        for (int i = 0; i < one.Length - 2; i++)
            Assert.AreEqual(one[i], summed[i], $"confusion count {i}: a row was scored twice or not at all");
        Assert.AreEqual(one[^1], summed[^1], "rows");
        Assert.AreEqual(one[^2], summed[^2], 1e-9, "log-loss sum");

        var ours = validation.Metrics(summed);
        var theirs = mlContext.MulticlassClassification.Evaluate(model.Transform(split.TestSet));
        Assert.AreEqual(theirs.MicroAccuracy, ours[ZeroMetric.Accuracy], 1e-12);
        Assert.AreEqual(theirs.LogLoss, ours[ZeroMetric.LogLoss], 1e-6);
        var counts = theirs.ConfusionMatrix.Counts;
        double macroF1 = Enumerable.Range(0, counts.Count).Average(c =>
        {
            double tp = counts[c][c], labelled = counts[c].Sum(), predicted = counts.Sum(row => row[c]);
            return 2 * tp / (labelled + predicted);
        });
        Assert.AreEqual(macroF1, ours[ZeroMetric.MacroF1], 1e-12);
    }

    [TestMethod]
    public void AValidationSetKeyedByAnotherMapValueToKeyIsRefusedBeforeTraining()
    {
        var mlContext = new MLContext(seed: 0);
        var rows = Datasets.Iris();
        var train = IrisFixtures.Prepare(mlContext, mlContext.Data.LoadFromEnumerable(rows));
        // Keyed on rows in another order: the same species get other key numbers.
        var validation = IrisFixtures.Prepare(mlContext, mlContext.Data.LoadFromEnumerable(rows.Reverse()));
        var options = new ZeroTrainerOptions { MaxEpoch = 1, ValidationSet = validation };
        var error = Assert.ThrowsExactly<ArgumentException>(() => mlContext.Zero().Trainer(options).Fit(train));
        StringAssert.Contains(error.Message, "Key both with the same fitted MapValueToKey");
        Assert.AreEqual("ValidationSet", error.ParamName);
    }

    [TestMethod]
    public void EarlyStoppingWithoutAValidationSetNamesTheOption()
    {
        var mlContext = new MLContext(seed: 0);
        var options = new ZeroTrainerOptions { MaxEpoch = 1, EarlyStoppingPatience = 2 };
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().Trainer(options).Fit(IrisFixtures.Prepared(mlContext)));
        StringAssert.Contains(error.Message, "ZeroTrainerOptions.ValidationSet");
        StringAssert.Contains(error.Message, "EarlyStoppingPatience");
    }
}
