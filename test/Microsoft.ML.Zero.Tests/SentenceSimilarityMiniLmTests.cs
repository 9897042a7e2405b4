using Microsoft.ML.Data;
using Microsoft.ML.Zero.Loop;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// The real MiniLM fine-tuned for sentence similarity on graded pairs of UCI sentences (SentimentPairs: 1.0 same kind
/// of review and sentiment, 0.5 same kind, 0.0 other kinds): its correlation with the targets is far above a
/// bag-of-words regression's on the same pairs, whose linear model over both sentences' words cannot compare them.
/// </summary>
[TestClass]
[TestCategory("bert")]
public sealed class SentenceSimilarityMiniLmTests
{
    [TestMethod]
    public void FineTunedMiniLmCorrelatesFarBetterThanABagOfWordsRegression()
    {
        var mlContext = new MLContext(seed: 0);
        // Train and test pairs from different sentences: the seeded 80/20 split of the 3,000.
        var sentences = SentimentData.All();
        var order = Enumerable.Range(0, sentences.Length).OrderBy(i => (i * 7919) % sentences.Length).ToArray();
        var trainRows = SentimentPairs.From(order.Take(2400).Select(i => sentences[i]).ToArray(), 1920, seed: 0);
        var testRows = SentimentPairs.From(order.Skip(2400).Select(i => sentences[i]).ToArray(), 300, seed: 1);
        var train = mlContext.Data.LoadFromEnumerable(trainRows);
        var test = mlContext.Data.LoadFromEnumerable(testRows);
        var targets = testRows.Select(r => (double)r.Label).ToArray();

        var model = mlContext.Zero().SentenceSimilarity(new ZeroSentenceSimilarityOptions
        {
            CheckpointPath = MiniLm.Directory(), WorldSize = 2, BatchSize = 16, MaxEpoch = 2, MaxSequenceLength = 64, LearningRate = 1e-4, Seed = 1,
            Progress = ZeroProgress.None, DeepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Fp32 },
        }).Fit(train);
        var scores = model.Transform(test).GetColumn<float>("Score").Select(s => (double)s).ToArray();
        double spearman = Correlation.Spearman(targets, scores), pearson = Correlation.Pearson(targets, scores);

        var bagOfWords = mlContext.Transforms.Text.FeaturizeText("Words1", "Sentence1")
            .Append(mlContext.Transforms.Text.FeaturizeText("Words2", "Sentence2"))
            .Append(mlContext.Transforms.Concatenate("Features", "Words1", "Words2"))
            .Append(mlContext.Regression.Trainers.Sdca()).Fit(train);
        var baseline = bagOfWords.Transform(test).GetColumn<float>("Score").Select(s => (double)s).ToArray();
        double baselineSpearman = Correlation.Spearman(targets, baseline);

        Console.WriteLine($"MiniLM: Spearman {spearman:F3}, Pearson {pearson:F3}; bag of words: Spearman {baselineSpearman:F3} ({testRows.Length} test pairs)");
        Assert.IsTrue(spearman > baselineSpearman + 0.2 && spearman > 0.25, $"MiniLM Spearman {spearman:F3} against the bag of words' {baselineSpearman:F3}");
    }
}
