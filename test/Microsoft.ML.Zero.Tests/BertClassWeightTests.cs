namespace Microsoft.ML.Zero.Tests;

/// <summary>Balanced class weights in a short MiniLM fine-tune on an imbalanced sentiment split.</summary>
[TestClass]
public sealed class BertClassWeightTests
{
    [TestMethod]
    [TestCategory("bert")]
    public void BalancedWeightsRaiseTheMacroF1OfAFineTuneOnAnImbalancedSplit()
    {
        // The UCI sentiment sentences with 1 positive in 9 kept: 334 training rows (41 positive) and 112 other rows to test
        // (8 positive). Unweighted, one epoch finds no positive (macro F1 0.48); balanced, 0.82 (measured on 2 cores).
        int positives = 0;
        var rows = SentimentData.All().Where(r => r.Label == "0" || positives++ % 9 == 0).ToArray();
        var train = rows.Where((_, i) => i % 5 != 0).Where((_, i) => i % 4 == 0).ToArray();
        var test = rows.Where((_, i) => i % 15 == 0).ToArray();

        (double MacroF1, double MinorityRecall) Evaluate(ZeroClassWeights? weights, List<string>? log = null)
        {
            var mlContext = new MLContext(seed: 0);
            var lines = TrainerLog.Capture(mlContext);
            var options = new ZeroTextClassificationOptions
            {
                CheckpointPath = MiniLm.Directory(), Sentence1ColumnName = "Text", WorldSize = 2, BatchSize = 8, MaxEpoch = 1, MaxSequenceLength = 32,
                LearningRate = 1e-4, Seed = 1, ClassWeights = weights, Progress = ZeroProgress.None, DeepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Fp32 },
            };
            var model = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(mlContext.Zero().TextClassification(options))
                .Fit(mlContext.Data.LoadFromEnumerable(train));
            var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(mlContext.Data.LoadFromEnumerable(test)));
            (model as IDisposable)?.Dispose();
            log?.AddRange(lines);
            return ClassificationLossTests.MacroF1(metrics);
        }

        var plain = Evaluate(null);
        var log = new List<string>();
        var balanced = Evaluate(ZeroClassWeights.Balanced, log);
        Assert.IsTrue(balanced.MacroF1 > plain.MacroF1 + 0.1, $"macro F1: balanced {balanced.MacroF1:F4}, unweighted {plain.MacroF1:F4}");
        Assert.IsTrue(balanced.MinorityRecall > plain.MinorityRecall, $"minority recall: balanced {balanced.MinorityRecall:F4}, unweighted {plain.MinorityRecall:F4}");
        // 334 rows of which 41 positive: 334 / (2 x 293) and 334 / (2 x 41).
        StringAssert.Contains(string.Join("\n", log), "Balanced class weights: 1 4.073, 0 0.57.");
    }
}
