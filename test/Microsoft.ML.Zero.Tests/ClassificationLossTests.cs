using System.Globalization;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// Class weights and label smoothing (ClassWeights, LabelSmoothingFactor): the loss PyTorch defines, balanced weights
/// from the training set's class counts, the effect on an imbalanced split, and the options' errors.
/// </summary>
[TestClass]
public sealed class ClassificationLossTests
{
    [ClassInitialize]
    public static void LoadTorch(TestContext _) => TorchRuntimeForTests.Load();

    // PyTorch's cross_entropy(reduction="sum", weight=w, label_smoothing=s), written out in doubles.
    private static double Formula(double[,] logits, long[] labels, double[] weights, double smoothing)
    {
        int classes = logits.GetLength(1);
        double total = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            double max = Enumerable.Range(0, classes).Max(c => logits[i, c]);
            double logSum = max + Math.Log(Enumerable.Range(0, classes).Sum(c => Math.Exp(logits[i, c] - max)));
            double NegativeLogP(int c) => logSum - logits[i, c];
            total += (1 - smoothing) * weights[labels[i]] * NegativeLogP((int)labels[i])
                + smoothing / classes * Enumerable.Range(0, classes).Sum(c => weights[c] * NegativeLogP(c));
        }
        return total;
    }

    [TestMethod]
    [DataRow(null, 0.0)]
    [DataRow(null, 0.1)]
    [DataRow(new[] { 0.5, 2.0, 1.5 }, 0.0)]
    [DataRow(new[] { 0.5, 2.0, 1.5 }, 0.25)]
    [DataRow(new[] { 0.5, 2.0, 1.5 }, 1.0)]
    public void TheLossOfAKnownBatchIsPyTorchsWeightedSmoothedCrossEntropy(double[]? weights, double smoothing)
    {
        var logits = new double[,] { { 2.0, -1.0, 0.5 }, { 0.1, 0.2, 3.0 }, { -2.0, 1.5, 1.0 }, { 0.0, 0.0, 0.0 } };
        var labels = new long[] { 0, 2, 1, 1 };
        using var scope = NewDisposeScope();
        var input = tensor(Enumerable.Range(0, 12).Select(i => (float)logits[i / 3, i % 3]).ToArray(), new long[] { 4, 3 });
        double loss = new ClassificationLoss(weights, smoothing).Sum(input, tensor(labels)).item<float>();
        double expected = Formula(logits, labels, weights ?? new[] { 1.0, 1.0, 1.0 }, smoothing);
        Assert.AreEqual(expected, loss, 1e-5 * expected);
        if (smoothing > 0)
            Assert.AreNotEqual(Formula(logits, labels, weights ?? new[] { 1.0, 1.0, 1.0 }, 0), loss, 1e-3, "smoothing changes the loss");
    }

    // The first step's loss, before any update: every run of one seed starts from the same model and batch.
    private static double FirstStepLoss(double smoothing)
    {
        using var folder = new TempFolder("zero-smoothing-");
        var mlContext = new MLContext(seed: 0);
        var options = new ZeroTrainerOptions
        {
            WorldSize = 2, BatchSize = 8, MaxEpoch = 1, Seed = 3, HiddenLayerSizes = new[] { 16 }, LabelSmoothingFactor = smoothing, Progress = ZeroProgress.None,
            DeepSpeed = DeepSpeedOptions.FromDeepSpeedConfig($$"""{ "csv_monitor": { "enabled": true, "output_path": "{{folder.Path}}", "job_name": "run" } }"""),
        };
        mlContext.Zero().Trainer(options).Fit(IrisFixtures.Prepared(mlContext));
        string first = File.ReadAllLines(Path.Combine(folder.Path, "run", "Train_Samples_train_loss.csv"))[1];
        return double.Parse(first.Split(',')[1], CultureInfo.InvariantCulture);
    }

    [TestMethod]
    public void TheTrainersLossWithLabelSmoothingIsPyTorchsMixOfTheLabelsAndTheUniformCrossEntropy()
    {
        // PyTorch's smoothed loss is (1 - s) x the plain cross-entropy + s x the cross-entropy against a uniform target.
        double plain = FirstStepLoss(0), uniform = FirstStepLoss(1), smoothed = FirstStepLoss(0.3);
        Assert.AreEqual(0.7 * plain + 0.3 * uniform, smoothed, 1e-5);
        Assert.IsTrue(Math.Abs(smoothed - plain) > 1e-3, $"smoothing left the loss at {plain}");
    }

    [TestMethod]
    public void BalancedWeightsAreRowsOverClassesTimesTheClassCountAndAverageOneOverTheRows()
    {
        var weights = ClassificationLoss.BalancedWeights(new long[] { 90, 10, 20 }, new[] { "a", "b", "c" }, "Options.ClassWeights");
        CollectionAssert.AreEqual(new[] { 120 / 270.0, 120 / 30.0, 120 / 60.0 }, weights);
        Assert.AreEqual(120, 90 * weights[0] + 10 * weights[1] + 20 * weights[2], 1e-12);

        var empty = Assert.ThrowsExactly<InvalidOperationException>(() =>
            ClassificationLoss.BalancedWeights(new long[] { 5, 0 }, new[] { "negative", "positive" }, "ZeroTrainerOptions.ClassWeights"));
        StringAssert.Contains(empty.Message, "ZeroTrainerOptions.ClassWeights is balanced, but class 'positive' (key 2) has no training rows");
    }

    [TestMethod]
    public void WithSeparateInputsPerRankTheClassCountsAreSummedOverTheRanks()
    {
        var counts = new long[2][];
        InProcessLauncher.Run(2, TimeSpan.FromSeconds(20), communicator =>
        {
            var local = communicator.Rank == 0 ? new long[] { 7, 1, 0 } : new long[] { 2, 0, 5 };
            counts[communicator.Rank] = new ShardedTraining(10, new BatchSizes(2, 1, 1), 1, 0, TinyShardedRun.Settings) { InputPerRank = true }
                .AgreeOnLabelCounts(communicator, local);
            return true;
        });
        CollectionAssert.AreEqual(new long[] { 9, 1, 5 }, counts[0]);
        CollectionAssert.AreEqual(counts[0], counts[1]);
    }

    // The UCI sentiment sentences with 1 positive in 9 kept: 1,333 training rows (135 positive), 334 test rows (32 positive).
    private static (SentimentRow[] Train, SentimentRow[] Test) ImbalancedSentiment()
    {
        int positives = 0;
        var rows = SentimentData.All().Where(r => r.Label == "0" || positives++ % 9 == 0).ToArray();
        return (rows.Where((_, i) => i % 5 != 0).ToArray(), rows.Where((_, i) => i % 5 == 0).ToArray());
    }

    // The mean over classes of F1, and the recall of the rarest class, from ML.NET's confusion matrix (rows: true class).
    internal static (double MacroF1, double MinorityRecall) MacroF1(Microsoft.ML.Data.MulticlassClassificationMetrics metrics)
    {
        var matrix = metrics.ConfusionMatrix;
        var precision = matrix.PerClassPrecision;
        var recall = matrix.PerClassRecall;
        double f1 = Enumerable.Range(0, precision.Count).Average(c => precision[c] + recall[c] == 0 ? 0 : 2 * precision[c] * recall[c] / (precision[c] + recall[c]));
        int minority = Enumerable.Range(0, matrix.Counts.Count).MinBy(c => matrix.Counts[c].Sum());
        return (f1, recall[minority]);
    }

    [TestMethod]
    public void BalancedWeightsRaiseTheMacroF1OfAnImbalancedSentimentSplit()
    {
        var (train, test) = ImbalancedSentiment();
        (double MacroF1, double MinorityRecall) Evaluate(ZeroClassWeights? weights)
        {
            var mlContext = new MLContext(seed: 0);
            var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label")
                .Append(mlContext.Transforms.Text.FeaturizeText("Features", "Text"))
                .Append(mlContext.Zero().Trainer(new ZeroTrainerOptions
                {
                    WorldSize = 2, BatchSize = 16, MaxEpoch = 3, LearningRate = 3e-3, HiddenLayerSizes = Array.Empty<int>(), Seed = 1,
                    ClassWeights = weights, Progress = ZeroProgress.None,
                }));
            var model = pipeline.Fit(mlContext.Data.LoadFromEnumerable(train));
            return MacroF1(mlContext.MulticlassClassification.Evaluate(model.Transform(mlContext.Data.LoadFromEnumerable(test))));
        }

        var plain = Evaluate(null);
        var balanced = Evaluate(ZeroClassWeights.Balanced);
        // Unweighted, softmax regression on this split predicts (almost) only negatives: macro F1 0.47-0.51 over seeds
        // 1-4; balanced, 0.65-0.68 with 44-50% of the positives found.
        Assert.IsTrue(plain.MinorityRecall < 0.1, $"unweighted minority recall {plain.MinorityRecall}");
        Assert.IsTrue(balanced.MinorityRecall > 0.3, $"balanced minority recall {balanced.MinorityRecall}");
        Assert.IsTrue(balanced.MacroF1 > plain.MacroF1 + 0.1, $"macro F1: balanced {balanced.MacroF1:F4}, unweighted {plain.MacroF1:F4}");
    }

    [TestMethod]
    public void ExplicitWeightsGiveTheTrainersLossTheirWeightPerRow()
    {
        // Every row of class c counts w[c] times: weights all 2 double the first step's loss of the same model and batch.
        double FirstLoss(ZeroClassWeights? weights)
        {
            using var folder = new TempFolder("zero-weights-");
            var mlContext = new MLContext(seed: 0);
            mlContext.Zero().Trainer(new ZeroTrainerOptions
            {
                BatchSize = 150, MaxEpoch = 1, Seed = 3, ClassWeights = weights, Progress = ZeroProgress.None,
                DeepSpeed = DeepSpeedOptions.FromDeepSpeedConfig($$"""{ "csv_monitor": { "enabled": true, "output_path": "{{folder.Path}}", "job_name": "run" } }"""),
            }).Fit(IrisFixtures.Prepared(mlContext));
            return double.Parse(File.ReadAllLines(Path.Combine(folder.Path, "run", "Train_Samples_train_loss.csv"))[1].Split(',')[1], CultureInfo.InvariantCulture);
        }
        Assert.AreEqual(2 * FirstLoss(null), FirstLoss(new ZeroClassWeights(2, 2, 2)), 1e-5);
        // Iris has 50 rows of each class, so its balanced weights are all 1.
        Assert.AreEqual(FirstLoss(null), FirstLoss(ZeroClassWeights.Balanced), 1e-6);
    }

    [TestMethod]
    public void WeightsThatDoNotFitTheClassesAreRefusedNamingTheOptionAndTheClassCount()
    {
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Prepared(mlContext);
        var count = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            mlContext.Zero().Trainer(new ZeroTrainerOptions { ClassWeights = new ZeroClassWeights(1, 2) }).Fit(data));
        StringAssert.Contains(count.Message, "ZeroTrainerOptions.ClassWeights has 2 weight(s) but the label has 3 classes (setosa, versicolor, virginica, in key order); give one weight per class");

        foreach (var bad in new[] { 0, -1, double.NaN, double.PositiveInfinity })
        {
            var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
                mlContext.Zero().Trainer(new ZeroTrainerOptions { ClassWeights = new ZeroClassWeights(1, bad, 1) }).Fit(data));
            StringAssert.Contains(error.Message, "ZeroTrainerOptions.ClassWeights[1] is");
            StringAssert.Contains(error.Message, "expected a finite weight above 0");
        }

        var smoothing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            mlContext.Zero().Trainer(new ZeroTrainerOptions { LabelSmoothingFactor = 1.5 }).Fit(data));
        StringAssert.Contains(smoothing.Message, "ZeroTrainerOptions.LabelSmoothingFactor is 1.5; expected in [0, 1]");
    }

    [TestMethod]
    public void AFactoryWithItsOwnLossRefusesTheLossOptionsAndOneWithoutTakesThem()
    {
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Prepared(mlContext);
        var error = Assert.ThrowsExactly<ArgumentException>(() =>
            mlContext.Zero().Trainer(new ZeroTrainerOptions { ModelFactory = new OwnLossFactory(), LabelSmoothingFactor = 0.1 }).Fit(data));
        StringAssert.Contains(error.Message, "ZeroTrainerOptions.LabelSmoothingFactor shapes the default cross-entropy loss, but ModelFactory (OwnLossFactory) overrides LossSum");

        var model = mlContext.Zero().Trainer(new ZeroTrainerOptions { ModelFactory = new IrisCnnFactory(), MaxEpoch = 1, ClassWeights = ZeroClassWeights.Balanced }).Fit(data);
        Assert.IsNotNull(model);
    }
}

/// <summary>A linear model whose factory sums its own loss (a mean-squared error against one-hot labels).</summary>
public sealed class OwnLossFactory : ZeroModelFactory
{
    public override nn.Module<Tensor, Tensor> CreateModel(int featureCount, int classCount) => nn.Linear(featureCount, classCount);

    public override Tensor LossSum(Tensor output, Tensor labels) =>
        nn.functional.mse_loss(output, nn.functional.one_hot(labels, output.shape[1]).to(output.dtype), reduction: nn.Reduction.Sum);
}
