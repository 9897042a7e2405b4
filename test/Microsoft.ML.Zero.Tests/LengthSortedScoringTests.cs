using System.Text;
using Microsoft.ML.Data;
using static TorchSharp.torch;
using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Models.Bert;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// Batched BERT scoring reads several scoring batches ahead and forwards their rows sorted by length, so that a batch
/// pads little. Rows still come back in their order, with the scores they get when each batch is scored as read.
/// </summary>
[TestClass]
public sealed class LengthSortedScoringTests
{
    private const int Rows = 61, ScoringBatchSize = 4;

    [TestMethod]
    [DataRow(ZeroLongTextHandling.Truncate, 64)]
    [DataRow(ZeroLongTextHandling.SlidingWindows, 12)]
    public void RowsSortedByLengthScoreAsRowsInTheirOrderAndComeBackInIt(ZeroLongTextHandling handling, int maxSequenceLength)
    {
        TorchRuntimeForTests.Load();
        manual_seed(3);
        var config = new BertConfig(TinyBertFolder.Vocabulary.Length, 8, 2, 2, 16, "gelu", 0, 0, TinyBertFolder.MaxPositions, 2, 1e-12, 0);
        using var model = new BertClassifier(config, 2, new Generator(0));
        var vocabulary = Encoding.UTF8.GetBytes(string.Join("\n", TinyBertFolder.Vocabulary) + "\n");
        var longText = new BertLongText(handling, handling == ZeroLongTextHandling.SlidingWindows ? 3 : 0, 4);
        var encoder = new BertTextEncoder(vocabulary, lowerCase: true, maxSequenceLength, longText: longText);
        var mlContext = new MLContext(seed: 0);
        var data = mlContext.Data.LoadFromEnumerable(Sentences());
        var scorer = new BertScorer(model, encoder, "Text", null);
        var transformer = new ZeroTransformer(scorer, new ScoreColumns("Score", "PredictedLabel", LabelKeyValues.FromLabel(data.Schema["Label"], 2)), ScoringBatchSize);

        Assert.IsTrue(scorer.BatchesReadTogether > 1, "batched scoring does not sort rows by length by default");
        var sorted = Scores(transformer, data);
        scorer.BatchesReadTogether = 1;
        var asRead = Scores(transformer, data);
        Assert.AreEqual(Rows, sorted.Length);
        Assert.AreEqual(Rows, asRead.Length);
        var windows = data.GetColumn<string>("Text").Select(text => encoder.EncodeWindows(text, null)).ToArray();
        Assert.IsTrue(windows.Select(w => w.Max(window => window.Ids.Length)).Distinct().Count() > 5, "the rows differ too little in length to be reordered");
        if (handling == ZeroLongTextHandling.SlidingWindows)
            Assert.IsTrue(windows.Any(w => w.Length > 1), "no row was cut into windows");

        using var _ = no_grad();
        for (int row = 0; row < Rows; row++)
        {
            // Each row alone, padded to nothing: the scores any batch of it must give, up to rounding.
            var alone = nn.functional.softmax(BertRowLogits.Compute(model, new[] { windows[row] }, 0, 1, encoder.PaddingId), dim: 1).data<float>().ToArray();
            for (int k = 0; k < 2; k++)
            {
                Assert.AreEqual(alone[k], sorted[row][k], 1e-5, $"row {row}, class {k}: sorted by length");
                Assert.AreEqual(asRead[row][k], sorted[row][k], 1e-5, $"row {row}, class {k}: sorted against as read");
            }
        }
    }

    // Sentences of 1 to 40 words in a seeded random order of lengths, so that consecutive rows differ in length.
    private static IEnumerable<SentimentRow> Sentences()
    {
        var random = new Random(7);
        var words = TinyBertFolder.Vocabulary.Skip(5).ToArray();
        for (int row = 0; row < Rows; row++)
        {
            int length = random.Next(1, 41);
            yield return new SentimentRow { Text = string.Join(' ', Enumerable.Range(0, length).Select(_ => words[random.Next(words.Length)])), Label = (row % 2).ToString() };
        }
    }

    private static float[][] Scores(ITransformer model, IDataView data) =>
        model.Transform(data).GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToArray();
}
