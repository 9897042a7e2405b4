using Microsoft.ML.Data;
using Microsoft.ML.Zero.Models.Bert;

namespace Microsoft.ML.Zero.Tests;

[TestClass]
public sealed class SentencePairTests
{
    [TestMethod]
    public void PairsAreEncodedWithSeparatorsTokenTypesAndLongestFirstTruncation()
    {
        var checkpoint = BertCheckpoint.Open(MiniLm.Directory());
        var vocabulary = File.ReadAllBytes(checkpoint.VocabPath);
        var encoder = new BertTextEncoder(vocabulary, checkpoint.LowerCase, 128);
        int cls = TokenId(vocabulary, "[CLS]"), sep = TokenId(vocabulary, "[SEP]");

        var (ids, types) = encoder.Encode("The food was great.", "Service was slow");
        int firstSep = Array.IndexOf(ids, sep);
        Assert.AreEqual(cls, ids[0]);
        Assert.AreEqual(sep, ids[^1]);
        Assert.IsTrue(firstSep is > 1 && firstSep < ids.Length - 2, $"separator at {firstSep} of {ids.Length}");
        CollectionAssert.AreEqual(Enumerable.Repeat(0, firstSep + 1).Concat(Enumerable.Repeat(1, ids.Length - firstSep - 1)).ToArray(), types);
        var (single, _) = encoder.Encode("The food was great.", null);
        CollectionAssert.AreEqual(single, ids.Take(firstSep + 1).ToArray(), "the first sentence is encoded as on its own");

        // Longest first: the long sentence loses tokens until the pair fits; the short one is kept whole.
        var shortEncoder = new BertTextEncoder(vocabulary, checkpoint.LowerCase, 12);
        string longText = "one two three four five six seven eight nine ten eleven twelve", shortText = "yes no";
        var (truncated, truncatedTypes) = shortEncoder.Encode(longText, shortText);
        Assert.AreEqual(12, truncated.Length);
        Assert.AreEqual(3, truncatedTypes.Count(t => t == 1), "yes, no and the last [SEP] keep token type 1");
        var (truncatedReversed, _) = shortEncoder.Encode(shortText, longText);
        Assert.AreEqual(12, truncatedReversed.Length);
        Assert.AreEqual(3, Array.IndexOf(truncatedReversed, sep), "[CLS] yes no [SEP] kept whole when it comes first");
    }

    [TestMethod]
    [TestCategory("bert")]
    public void PairClassifierReadsTheSecondSentenceAndReloads()
    {
        // Sentence 1 is a sentence drawn at random, sentence 2 the labelled one: only a model that reads the second
        // sentence (token type 1) can beat chance.
        var rows = SentimentData.All();
        var random = new Random(0);
        var pairs = rows.Select(row => new SentencePairRow { First = rows[random.Next(rows.Length)].Text, Second = row.Text, Label = row.Label }).ToArray();
        var mlContext = new MLContext(seed: 0);
        var split = mlContext.Data.TrainTestSplit(mlContext.Data.LoadFromEnumerable(pairs), testFraction: 0.2, seed: 0);
        var train = mlContext.Data.TakeRows(split.TrainSet, 1200);
        var test = mlContext.Data.TakeRows(split.TestSet, 300);
        var options = new ZeroTextClassificationOptions
        {
            CheckpointPath = MiniLm.Directory(), Sentence1ColumnName = "First", Sentence2ColumnName = "Second",
            WorldSize = 2, BatchSize = 16, MaxEpoch = 1, LearningRate = 1e-4, MaxSequenceLength = 64,
        };
        var model = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(mlContext.Zero().TextClassification(options)).Fit(train);

        var scored = model.Transform(test);
        double accuracy = mlContext.MulticlassClassification.Evaluate(scored).MicroAccuracy;
        Assert.IsTrue(accuracy >= 0.75, $"pair accuracy {accuracy:F4}; chance is about 0.5");

        using var folder = new TempFolder("zero-pairs-");
        string path = folder.Combine("model.zip");
        mlContext.Model.Save(model, train.Schema, path);
        var loaded = mlContext.Model.Load(path, out _);
        var before = scored.GetColumn<VBuffer<float>>("Score").Take(20).Select(v => v.DenseValues().ToArray()).ToArray();
        var after = loaded.Transform(test).GetColumn<VBuffer<float>>("Score").Take(20).Select(v => v.DenseValues().ToArray()).ToArray();
        for (int i = 0; i < before.Length; i++)
            CollectionAssert.AreEqual(before[i], after[i], $"row {i}");

        var withoutSecond = mlContext.Data.LoadFromEnumerable(new[] { new FirstSentenceRow { First = "Great food.", Label = "1" } });
        var error = Assert.Throws<Exception>(() => loaded.Transform(withoutSecond).Preview());
        StringAssert.Contains(error.Message, "'Second'");
    }

    private static int TokenId(byte[] vocabulary, string token) =>
        Array.IndexOf(System.Text.Encoding.UTF8.GetString(vocabulary).Split('\n').Select(l => l.TrimEnd('\r')).ToArray(), token);
}

public sealed class SentencePairRow
{
    public string First { get; set; } = "";

    public string Second { get; set; } = "";

    public string Label { get; set; } = "";
}

public sealed class FirstSentenceRow
{
    public string First { get; set; } = "";

    public string Label { get; set; } = "";
}
