using Microsoft.ML.Data;
using Microsoft.ML.Zero.Models.Bert;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// Empty text is valid input, as in Hugging Face's tokenizers and ML.NET's text transforms: it encodes as [CLS] [SEP]
/// (or [CLS] a [SEP] [SEP] as the second sentence) when training and when scoring. A missing label is still an error
/// (BertBadInputTests).
/// </summary>
[TestClass]
public sealed class EmptyTextTests
{
    private static ZeroTextClassificationOptions Options(string? second = null) => new()
    {
        CheckpointPath = MiniLm.Directory(), Sentence1ColumnName = "First", Sentence2ColumnName = second,
        WorldSize = 1, BatchSize = 4, MaxEpoch = 1, MaxSequenceLength = 32,
    };

    // Eight labelled sentences, as sentence pairs; the rows listed get empty text (or only spaces) in the column chosen.
    private static SentencePairRow[] Rows(bool emptySecond, params int[] emptyRows)
    {
        var rows = SentimentData.All().Take(8).Select(r => new SentencePairRow { First = r.Text, Second = r.Text, Label = r.Label }).ToArray();
        foreach (int row in emptyRows)
        {
            string empty = row % 2 == 0 ? "" : "   ";
            if (emptySecond)
                rows[row].Second = empty;
            else
                rows[row].First = empty;
        }
        return rows;
    }

    // Each row's scores copied out as read (GetColumn may reuse one buffer), checked to be probabilities.
    private static float[][] Probabilities(IDataView scored, int expectedRows)
    {
        var rows = scored.GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToArray();
        Assert.AreEqual(expectedRows, rows.Length);
        foreach (var row in rows)
        {
            Assert.IsTrue(row.All(float.IsFinite), $"scores {string.Join(", ", row)}");
            Assert.AreEqual(1, row.Sum(), 1e-4);
        }
        return rows;
    }

    [TestMethod]
    public void EmptyTextEncodesAsClsSep()
    {
        var checkpoint = BertCheckpoint.Open(MiniLm.Directory());
        var vocabulary = File.ReadAllBytes(checkpoint.VocabPath);
        var encoder = new BertTextEncoder(vocabulary, checkpoint.LowerCase, 16);
        var lines = System.Text.Encoding.UTF8.GetString(vocabulary).Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        int cls = Array.IndexOf(lines, "[CLS]"), sep = Array.IndexOf(lines, "[SEP]");

        foreach (string empty in new[] { "", "   " })
        {
            var (ids, types) = encoder.Encode(empty, null);
            CollectionAssert.AreEqual(new[] { cls, sep }, ids, $"'{empty}' alone");
            CollectionAssert.AreEqual(new[] { 0, 0 }, types);

            var (a, _) = encoder.Encode("good", null);
            var (pairIds, pairTypes) = encoder.Encode("good", empty);
            CollectionAssert.AreEqual(a.Append(sep).ToArray(), pairIds, $"'{empty}' as the second sentence: [CLS] good [SEP] [SEP]");
            CollectionAssert.AreEqual(new[] { 0, 0, 0, 1 }, pairTypes);

            var (bothIds, bothTypes) = encoder.Encode(empty, empty);
            CollectionAssert.AreEqual(new[] { cls, sep, sep }, bothIds, $"'{empty}' twice");
            CollectionAssert.AreEqual(new[] { 0, 0, 1 }, bothTypes);
        }
    }

    [TestMethod]
    [TestCategory("bert")]
    public void TrainingAcceptsEmptyFirstSentences()
    {
        var mlContext = new MLContext(seed: 0);
        var data = mlContext.Data.LoadFromEnumerable(Rows(emptySecond: false, 0, 3, 6));
        var model = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(mlContext.Zero().TextClassification(Options())).Fit(data);
        Probabilities(model.Transform(data), 8);
    }

    [TestMethod]
    [TestCategory("bert")]
    public void TrainingAcceptsEmptySecondSentencesInAPairTask()
    {
        var mlContext = new MLContext(seed: 0);
        var data = mlContext.Data.LoadFromEnumerable(Rows(emptySecond: true, 1, 2, 5));
        var model = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(mlContext.Zero().TextClassification(Options("Second"))).Fit(data);
        Probabilities(model.Transform(data), 8);
    }

    [TestMethod]
    [TestCategory("bert")]
    public void ScoringAcceptsEmptyText()
    {
        var mlContext = new MLContext(seed: 0);
        var model = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(mlContext.Zero().TextClassification(Options()))
            .Fit(mlContext.Data.LoadFromEnumerable(Rows(emptySecond: false)));

        // The batched cursor (Transform) and the row-by-row one (PredictionEngine) both score empty text.
        var empty = mlContext.Data.LoadFromEnumerable(new[]
        {
            new FirstSentenceRow { First = "", Label = "1" }, new FirstSentenceRow { First = "  ", Label = "0" },
            new FirstSentenceRow { First = "Great food.", Label = "1" },
        });
        var scores = Probabilities(model.Transform(empty), 3);
        CollectionAssert.AreEqual(scores[0], scores[1], "'' and spaces are the same [CLS] [SEP]");

        var engine = mlContext.Model.CreatePredictionEngine<FirstSentenceRow, EmptyTextPrediction>(model);
        var predicted = engine.Predict(new FirstSentenceRow { First = "", Label = "1" }).Score;
        // Alone, the row is not padded to the batch's longest row: the same scores to rounding.
        for (int i = 0; i < scores[0].Length; i++)
            Assert.AreEqual(scores[0][i], predicted[i], 1e-4, $"class {i}");
    }
}

public sealed class EmptyTextPrediction
{
    public float[] Score { get; set; } = Array.Empty<float>();
}
