using System.Text.RegularExpressions;
using Microsoft.ML.Data;
using Microsoft.ML.Zero.Loop;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// The sentence-similarity regression on a tiny BERT (TinyBertFolder) and real sentence pairs (SentimentPairs): it fits on 2 ranks,
/// evaluates with ML.NET's regression evaluator, saves, loads and predicts; validation reports MSE, Pearson and
/// Spearman and keeps the best model by Spearman; bad input and options are refused by name.
/// </summary>
[TestClass]
public sealed class SentenceSimilarityTests
{
    private static TempFolder? _models;
    private static string _tiny = "";

    [ClassInitialize]
    public static void WriteModel(TestContext context)
    {
        _models = new TempFolder("zero-similarity-");
        _tiny = TinyBertFolder.Write(_models.Combine("tiny"), hiddenDropout: 0.1);
    }

    [ClassCleanup]
    public static void DeleteModel() => _models?.Dispose();

    private static SimilarityPair[] Pairs(int count, int seed = 0) => SentimentPairs.From(SentimentData.All(), count, seed);

    private static ZeroSentenceSimilarityOptions Options(int worldSize = 2) => new()
    {
        CheckpointPath = _tiny, WorldSize = worldSize, BatchSize = 16, MaxEpoch = 2, MaxSequenceLength = 32, LearningRate = 1e-3, Seed = 7,
        Progress = ZeroProgress.None, DeepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Fp32 },
    };

    private sealed class SimilarityPrediction
    {
        public float Score { get; set; }
    }

    [TestMethod]
    public void TwoRanksFitAndTheModelEvaluatesSavesLoadsAndPredictsAsMLNetRegressionsDo()
    {
        var mlContext = new MLContext(seed: 0);
        var train = mlContext.Data.LoadFromEnumerable(Pairs(160));
        var testRows = Pairs(240).Skip(160).ToArray();
        var test = mlContext.Data.LoadFromEnumerable(testRows);
        var model = mlContext.Zero().SentenceSimilarity(Options()).Fit(train);

        var scored = model.Transform(test);
        var metrics = mlContext.Regression.Evaluate(scored);
        Assert.IsTrue(double.IsFinite(metrics.MeanSquaredError) && double.IsFinite(metrics.RSquared), $"MSE {metrics.MeanSquaredError}, R^2 {metrics.RSquared}");
        var scores = scored.GetColumn<float>("Score").ToArray();
        Assert.AreEqual(testRows.Length, scores.Length);
        Assert.IsTrue(scores.Distinct().Count() > 1, "every pair got the same score");
        // Scores are the head's value, not a probability: nothing holds them to [0, 1] or makes two of them sum to 1.
        Assert.AreEqual(metrics.MeanSquaredError, testRows.Zip(scores, (row, score) => Math.Pow(score - row.Label, 2)).Average(), 1e-6);

        using var folder = new TempFolder("zero-similarity-zip-");
        string path = folder.Combine("model.zip");
        mlContext.Model.Save(model, train.Schema, path);
        var loaded = mlContext.Model.Load(path, out _);
        Assert.IsInstanceOfType<ZeroRegressionTransformer>(loaded);
        CollectionAssert.AreEqual(scores, loaded.Transform(test).GetColumn<float>("Score").ToArray(), "the loaded model scores otherwise");

        var engine = mlContext.Model.CreatePredictionEngine<SimilarityPair, SimilarityPrediction>(loaded);
        Assert.AreEqual(scores[3], engine.Predict(testRows[3]).Score, 1e-6f, "PredictionEngine against Transform");
    }

    [TestMethod]
    public void ValidationReportsMsePearsonAndSpearmanAndKeepsTheBestModelBySpearman()
    {
        var mlContext = new MLContext(seed: 0);
        var lines = TrainerLog.Capture(mlContext);
        var validationRows = Pairs(260).Skip(160).ToArray();
        var options = Options();
        options.ValidationSet = mlContext.Data.LoadFromEnumerable(validationRows);
        options.EvaluationStrategy = ZeroEvaluationStrategy.Steps;
        options.EvaluationSteps = 4;
        options.LoadBestModelAtEnd = true;
        var model = mlContext.Zero().SentenceSimilarity(options).Fit(mlContext.Data.LoadFromEnumerable(Pairs(160)));

        var evaluations = lines.Select(line => Regex.Match(line, @"^Validation after step (\d+) .*: MSE (\d+\.\d+), Pearson (-?\d+\.\d+), Spearman (-?\d+\.\d+)"))
            .Where(m => m.Success).ToList();
        Assert.AreEqual(3, evaluations.Count, "after steps 4 and 8 of 10, and the last; " + string.Join("\n", lines));
        var best = evaluations.MaxBy(m => double.Parse(m.Groups[4].Value, System.Globalization.CultureInfo.InvariantCulture))!;
        // A best model from before the last step is loaded back; the last one is the model already.
        if (best != evaluations[^1])
            StringAssert.Contains(string.Join("\n", lines), $"Loaded the best model, from step {best.Groups[1].Value}");

        // The loaded model is the best one: scoring the validation set again gives its Spearman.
        var scores = model.Transform(options.ValidationSet).GetColumn<float>("Score").Select(s => (double)s).ToArray();
        double spearman = Correlation.Spearman(validationRows.Select(r => (double)r.Label).ToArray(), scores);
        Assert.AreEqual(double.Parse(best.Groups[4].Value, System.Globalization.CultureInfo.InvariantCulture), spearman, 1e-4);
    }

    [TestMethod]
    public void EarlyStoppingEndsTrainingOnceSpearmanStopsImproving()
    {
        var mlContext = new MLContext(seed: 0);
        var lines = TrainerLog.Capture(mlContext);
        var options = Options();
        options.ValidationSet = mlContext.Data.LoadFromEnumerable(Pairs(260).Skip(160).ToArray());
        options.EvaluationStrategy = ZeroEvaluationStrategy.Steps;
        options.EvaluationSteps = 4;
        // Spearman lies in [-1, 1]: no evaluation improves on another by more than 2, so the second one ends training.
        options.EarlyStoppingPatience = 1;
        options.EarlyStoppingThreshold = 2;
        using var model = mlContext.Zero().SentenceSimilarity(options).Fit(mlContext.Data.LoadFromEnumerable(Pairs(160)));
        string log = string.Join("\n", lines);
        StringAssert.Contains(log, "Early stopping after step 8", log);
        Assert.IsFalse(log.Contains("Validation after step 10"), log);
    }

    [TestMethod]
    public void SpearmanGivesTiesTheirMeanRankAsSciPyDoes()
    {
        // Ranks [1, 2.5, 2.5, 4, 5] and [2, 1, 3.5, 3.5, 5]: Pearson of the ranks is 7.25 / sqrt(9.5 x 9.5).
        Assert.AreEqual(7.25 / 9.5, Correlation.Spearman(new double[] { 1, 2, 2, 3, 5 }, new double[] { 2, 1, 4, 4, 9 }), 1e-12);
        CollectionAssert.AreEqual(new[] { 1, 2.5, 2.5, 4, 5 }, Correlation.Ranks(new double[] { 1, 2, 2, 3, 5 }));
        Assert.AreEqual(1, Correlation.Pearson(new double[] { 1, 2, 3 }, new double[] { 2, 4, 6 }), 1e-12);
        Assert.IsTrue(double.IsNaN(Correlation.Pearson(new double[] { 1, 1, 1 }, new double[] { 2, 4, 6 })), "a constant side has no correlation");

        // Two shares of a set, each filling its own rows, sum to the whole set's metrics.
        var first = new RegressionTally(4);
        var second = new RegressionTally(4);
        first.Add(0, 1, 0.9);
        first.Add(1, 0, 0.2);
        second.Add(2, 1, 0.4);
        second.Add(3, 0, 0.5);
        var metrics = RegressionTally.Metrics(first.Sums.Zip(second.Sums, (a, b) => a + b).ToArray());
        Assert.AreEqual(4, metrics.Rows);
        Assert.AreEqual((0.01 + 0.04 + 0.36 + 0.25) / 4, metrics[ZeroMetric.MeanSquaredError], 1e-12);
        Assert.AreEqual(Correlation.Spearman(new double[] { 1, 0, 1, 0 }, new[] { 0.9, 0.2, 0.4, 0.5 }), metrics[ZeroMetric.SpearmanCorrelation], 1e-12);
    }

    [TestMethod]
    public void SlidingWindowsScoreALongPairAsTheMeanOfItsWindows()
    {
        var mlContext = new MLContext(seed: 0);
        // Second texts that leave room for windows of the first: the windows keep a pair's second text whole.
        var rows = Pairs(200).Where(row => row.Sentence2.Split(' ').Length <= 24).Take(96).Select((row, i) => new SimilarityPair
        {
            Sentence1 = i % 3 == 0 ? string.Join(" ", Enumerable.Repeat(row.Sentence1, 6)) : row.Sentence1, Sentence2 = row.Sentence2, Label = row.Label,
        }).ToArray();
        var options = Options(worldSize: 1);
        options.MaxEpoch = 1;
        options.MaxSequenceLength = TinyBertFolder.MaxPositions;
        options.LongTextHandling = ZeroLongTextHandling.SlidingWindows;
        var data = mlContext.Data.LoadFromEnumerable(rows);
        var model = mlContext.Zero().SentenceSimilarity(options).Fit(data);
        var windowed = model.Transform(data).GetColumn<float>("Score").ToArray();

        // The same weights, read truncated: rows that fit score the same, long ones otherwise.
        var scorer = model.Scorer;
        var truncated = new Microsoft.ML.Zero.MLNet.BertScorer(scorer.Model, new Microsoft.ML.Zero.Models.Bert.BertTextEncoder(scorer.Encoder.Vocabulary, scorer.Encoder.LowerCase,
            scorer.Encoder.MaxSequenceLength), scorer.Sentence1ColumnName, scorer.Sentence2ColumnName, regression: true);
        var plain = new ZeroRegressionTransformer(truncated, model.Outputs, 64).Transform(data).GetColumn<float>("Score").ToArray();
        for (int i = 0; i < rows.Length; i++)
        {
            bool fits = scorer.Encoder.EncodeWindows(rows[i].Sentence1, rows[i].Sentence2).Length == 1;
            if (fits)
                Assert.AreEqual(plain[i], windowed[i], 1e-5f, $"row {i} fits in one window");
        }
        Assert.IsTrue(rows.Where((_, i) => i % 3 == 0).Zip(windowed.Where((_, i) => i % 3 == 0), plain.Where((_, i) => i % 3 == 0))
            .Any(t => Math.Abs(t.Second - t.Third) > 1e-4), "no long row scored otherwise in windows");
    }

    private sealed class IntegerLabelPair
    {
        public string Sentence1 { get; set; } = "";
        public string Sentence2 { get; set; } = "";
        public int Label { get; set; }
    }

    [TestMethod]
    public void BadLabelsAndClassifierOptionsAreRefusedByName()
    {
        var mlContext = new MLContext(seed: 0);
        var integers = mlContext.Data.LoadFromEnumerable(new[] { new IntegerLabelPair { Sentence1 = "a", Sentence2 = "b", Label = 1 } });
        var wrongType = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().SentenceSimilarity(Options()).Fit(integers));
        StringAssert.Contains(wrongType.Message, "Label column 'Label' has type Int32; expected Single");
        StringAssert.Contains(wrongType.Message, "ConvertType");

        var missing = mlContext.Data.LoadFromEnumerable(new[] { new SimilarityPair { Sentence1 = "a", Sentence2 = "b", Label = float.NaN } });
        var noLabel = Assert.ThrowsExactly<InvalidOperationException>(() => mlContext.Zero().SentenceSimilarity(Options()).Fit(missing));
        StringAssert.Contains(noLabel.Message, "missing value at row 0");

        var accuracy = Options();
        accuracy.MetricForBestModel = ZeroMetric.Accuracy;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().SentenceSimilarity(accuracy)).Message, "MetricForBestModel");
        var weights = Options();
        weights.ClassWeights = ZeroClassWeights.Balanced;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().SentenceSimilarity(weights)).Message, "ClassWeights");
        var single = Options();
        single.Sentence2ColumnName = null;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().SentenceSimilarity(single)).Message, "Sentence2ColumnName");
        var spearmanForClassifier = new ZeroTextClassificationOptions { CheckpointPath = _tiny, MetricForBestModel = ZeroMetric.SpearmanCorrelation };
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().TextClassification(spearmanForClassifier)).Message, "a classifier's metric");
    }
}
