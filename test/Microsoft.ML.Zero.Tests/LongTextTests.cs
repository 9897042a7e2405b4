using System.IO.Compression;
using System.Reflection;
using Microsoft.ML.Data;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Models.Bert;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// Text longer than MaxSequenceLength: head and tail, sliding windows whose logits are averaged per row (the same in
/// training and scoring), the handling saved with the model, and models saved before it loading as truncation.
/// </summary>
[TestClass]
public sealed class LongTextTests
{
    // Thirty words of one WordPiece each or more; the tests take the tokens from the encoder itself.
    private const string LongText = "the quick brown fox jumps over the lazy dog while seven tired old men sing about rivers mountains " +
        "cities forests oceans deserts islands valleys bridges towers castles gardens markets harbours";

    private static byte[] Vocabulary => File.ReadAllBytes(BertCheckpoint.Open(MiniLm.Directory()).VocabPath);

    private static BertTextEncoder Encoder(int maxSequenceLength, ZeroLongTextHandling handling, int stride = 0, int maxWindows = 8) =>
        new(Vocabulary, lowerCase: true, maxSequenceLength, longText: new BertLongText(handling, stride, maxWindows));

    // The text's WordPiece ids without [CLS] and [SEP].
    private static int[] Tokens(string text) => Encoder(512, ZeroLongTextHandling.Truncate).Encode(text, null).Ids[1..^1];

    private static int[] WithSpecials(IEnumerable<int> tokens) => [Cls, .. tokens, Sep];

    private static readonly int Cls = TokenId("[CLS]"), Sep = TokenId("[SEP]");

    private static int TokenId(string token) =>
        Array.IndexOf(System.Text.Encoding.UTF8.GetString(Vocabulary).Split('\n').Select(l => l.TrimEnd('\r')).ToArray(), token);

    [TestMethod]
    public void HeadAndTailKeepsAQuarterFromTheHeadAndTheRestFromTheTail()
    {
        var tokens = Tokens(LongText);
        Assert.IsTrue(tokens.Length > 30, $"{tokens.Length} tokens");
        // 16 tokens hold 14 of the text: (14 + 2) / 4 = 4 from the head, 10 from the tail.
        var (ids, types) = Encoder(16, ZeroLongTextHandling.HeadAndTail).EncodeWindows(LongText, null).Single();
        CollectionAssert.AreEqual(WithSpecials(tokens[..4].Concat(tokens[^10..])), ids);
        CollectionAssert.AreEqual(new int[16], types);
        // At 512 tokens the rule is Sun et al.'s head 128 + tail 382.
        var thousand = Enumerable.Range(0, 1000).ToList();
        CollectionAssert.AreEqual(Enumerable.Range(0, 128).Concat(Enumerable.Range(1000 - 382, 382)).ToArray(), BertLongText.HeadAndTail(thousand, 510).ToArray());
        // Text that fits is kept whole.
        CollectionAssert.AreEqual(WithSpecials(Tokens("a short text")), Encoder(16, ZeroLongTextHandling.HeadAndTail).EncodeWindows("a short text", null).Single().Ids);
    }

    [TestMethod]
    public void WindowsCoverTheWholeTextOverlappingByTheStride()
    {
        var tokens = Tokens(LongText);
        int n = tokens.Length;
        // 12 tokens hold 10 of the text; with stride 3 each window starts 7 tokens after the one before.
        var windows = Encoder(12, ZeroLongTextHandling.SlidingWindows, stride: 3).EncodeWindows(LongText, null);
        int expectedCount = 1 + (n - 10 + 6) / 7;
        Assert.AreEqual(expectedCount, windows.Length);
        for (int k = 0; k < windows.Length; k++)
        {
            int start = 7 * k, end = Math.Min(start + 10, n);
            CollectionAssert.AreEqual(WithSpecials(tokens[start..end]), windows[k].Ids, $"window {k}");
            CollectionAssert.AreEqual(new int[end - start + 2], windows[k].TokenTypes, $"window {k}");
            if (k > 0)
                CollectionAssert.AreEqual(windows[k - 1].Ids[^4..^1], windows[k].Ids[1..4], $"windows {k - 1} and {k} share 3 tokens");
        }
        CollectionAssert.AreEqual(tokens[^3..], windows[^1].Ids[^4..^1], "the last window ends at the text's end");

        // Stride 0 (Hugging Face's default): windows side by side, together exactly the text.
        var sideBySide = Encoder(12, ZeroLongTextHandling.SlidingWindows).EncodeWindows(LongText, null);
        CollectionAssert.AreEqual(tokens, sideBySide.SelectMany(w => w.Ids[1..^1]).ToArray());
        // Past the cap the rest of the text is dropped: the first two windows only.
        var capped = Encoder(12, ZeroLongTextHandling.SlidingWindows, stride: 3, maxWindows: 2).EncodeWindows(LongText, null);
        Assert.AreEqual(2, capped.Length);
        CollectionAssert.AreEqual(windows[1].Ids, capped[1].Ids);
        // Short and empty text: one window.
        CollectionAssert.AreEqual(WithSpecials(Tokens("a short text")), Encoder(12, ZeroLongTextHandling.SlidingWindows, 3).EncodeWindows("a short text", null).Single().Ids);
        CollectionAssert.AreEqual(new[] { Cls, Sep }, Encoder(12, ZeroLongTextHandling.SlidingWindows, 3).EncodeWindows("", null).Single().Ids);
    }

    [TestMethod]
    public void APairIsReadInWindowsOverTheFirstTextWithTheSecondWholeInEach()
    {
        var tokens = Tokens(LongText);
        var second = Tokens("is it a poem");
        int budget = 20 - 3 - second.Length;
        var windows = Encoder(20, ZeroLongTextHandling.SlidingWindows, stride: 2).EncodeWindows(LongText, "is it a poem");
        Assert.IsTrue(windows.Length > 2, $"{windows.Length} windows");
        for (int k = 0; k < windows.Length; k++)
        {
            int start = (budget - 2) * k, end = Math.Min(start + budget, tokens.Length);
            int[] expected = [Cls, .. tokens[start..end], Sep, .. second, Sep];
            CollectionAssert.AreEqual(expected, windows[k].Ids, $"window {k}");
            CollectionAssert.AreEqual(Enumerable.Repeat(0, end - start + 2).Concat(Enumerable.Repeat(1, second.Length + 1)).ToArray(), windows[k].TokenTypes);
        }
        Assert.AreEqual(tokens.Length, (budget - 2) * (windows.Length - 1) + windows[^1].Ids.Length - 3 - second.Length, "the last window ends at the first text's end");

        var headAndTail = Encoder(20, ZeroLongTextHandling.HeadAndTail).EncodeWindows(LongText, "is it a poem").Single();
        int head = (budget + 2) / 4;
        CollectionAssert.AreEqual((int[])[Cls, .. tokens[..head], .. tokens[^(budget - head)..], Sep, .. second, Sep], headAndTail.Ids);

        // A second text that leaves no room for a window to move on is an error naming the sizes.
        var error = Assert.Throws<ArgumentException>(() => Encoder(12, ZeroLongTextHandling.SlidingWindows, stride: 3).EncodeWindows(LongText, "is it a poem about the sea"));
        StringAssert.Contains(error.Message, "A second text of");
        StringAssert.Contains(error.Message, "WindowStride 3");
        StringAssert.Contains(error.Message, "MaxSequenceLength");
    }

    // A randomly initialized two-layer BERT (hidden 8) over MiniLM's real vocabulary: real tokens, quick to run.
    private static BertClassifier TinyBert(int classes = 3)
    {
        TorchRuntimeForTests.Load();
        manual_seed(11);
        var config = new BertConfig(30522, 8, 2, 2, 16, "gelu", 0.1, 0.1, 64, 2, 1e-12, 0);
        return new BertClassifier(config, classes, new Generator(0));
    }

    private static readonly string[] Texts =
    {
        LongText,
        "a short text",
        LongText + " " + LongText,
        "",
        "rivers and mountains and " + LongText,
    };

    private static readonly string[] Labels = { "b", "a", "c", "a", "b" };

    private static ZeroTransformer Transformer(BertClassifier model, BertTextEncoder encoder, MLContext mlContext, int scoringBatchSize = 2)
    {
        var keyed = Keyed(mlContext);
        var labels = LabelKeyValues.FromLabel(keyed.Schema["Label"], model.ClassCount);
        return new ZeroTransformer(new BertScorer(model, encoder, "Text", null), new ScoreColumns("Score", "PredictedLabel", labels), scoringBatchSize);
    }

    private static IDataView Keyed(MLContext mlContext)
    {
        var rows = mlContext.Data.LoadFromEnumerable(Texts.Zip(Labels, (text, label) => new SentimentRow { Text = text, Label = label }));
        return mlContext.Transforms.Conversion.MapValueToKey("Label").Fit(rows).Transform(rows);
    }

    private static float[][] Scores(ITransformer model, IDataView data) =>
        model.Transform(data).GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToArray();

    [TestMethod]
    public void ARowScoresAsTheSoftmaxOfTheMeanOfItsWindowsLogits()
    {
        using var model = TinyBert();
        var encoder = Encoder(16, ZeroLongTextHandling.SlidingWindows, stride: 4);
        var mlContext = new MLContext(seed: 0);
        using var transformer = Transformer(model, encoder, mlContext);
        var scores = Scores(transformer, Keyed(mlContext));

        using var _ = no_grad();
        for (int row = 0; row < Texts.Length; row++)
        {
            var windows = encoder.EncodeWindows(Texts[row], null);
            // Each window scored on its own, then averaged.
            var logits = windows.Select(window => model.forward(BertCollator.Collate(new[] { window }, 0, 1, encoder.PaddingId))).ToList();
            var expected = nn.functional.softmax(stack(logits).mean(new long[] { 0 }), dim: 1).squeeze(0).data<float>().ToArray();
            for (int c = 0; c < expected.Length; c++)
                Assert.AreEqual(expected[c], scores[row][c], 1e-5, $"row {row} ({windows.Length} windows), class {c}");
        }

        // Truncation reads only the first window: the long rows score differently.
        using var truncating = Transformer(TinyBert(), Encoder(16, ZeroLongTextHandling.Truncate), mlContext);
        var truncated = Scores(truncating, Keyed(mlContext));
        Assert.IsTrue(Math.Abs(truncated[0][0] - scores[0][0]) > 1e-4, "the long row scored as truncated");
        Assert.AreEqual(truncated[1][0], scores[1][0], 1e-6, "a short row is one window either way");
    }

    [TestMethod]
    [DataRow(ZeroLongTextHandling.SlidingWindows)]
    [DataRow(ZeroLongTextHandling.HeadAndTail)]
    public void TrainingTakesTheLossOnTheLogitsThatScoringUses(ZeroLongTextHandling handling)
    {
        using var model = TinyBert();
        var encoder = Encoder(16, handling, stride: handling == ZeroLongTextHandling.SlidingWindows ? 4 : 0);
        var mlContext = new MLContext(seed: 0);
        using var transformer = Transformer(model, encoder, mlContext);   // puts the model in eval mode: no dropout
        var scores = Scores(transformer, Keyed(mlContext));
        var labels = new long[] { 0, 1, 2, 1, 0 };   // keys less one, in MapValueToKey's order of first appearance: b, a, c
        var shard = new TextEpochShard(model, Texts.Select(text => encoder.EncodeWindows(text, null)).ToArray(), labels.Select(l => (float)l).ToArray(), encoder.PaddingId,
            ClassificationLoss.CrossEntropy.Sum);

        using var _ = no_grad();
        for (int start = 0; start < Texts.Length; start++)
        {
            double loss = shard.LossSum(start, 1).item<float>();
            Assert.AreEqual(-Math.Log(scores[start][labels[start]]), loss, 1e-4, $"row {start}");
        }
        double sum = shard.LossSum(0, Texts.Length).item<float>();
        Assert.AreEqual(Enumerable.Range(0, Texts.Length).Sum(row => -Math.Log(scores[row][labels[row]])), sum, 1e-4, "the loss sums over rows, not windows");
    }

    [TestMethod]
    [DataRow(ZeroLongTextHandling.SlidingWindows, 5, 3)]
    [DataRow(ZeroLongTextHandling.HeadAndTail, 0, 1)]
    [DataRow(ZeroLongTextHandling.Truncate, 0, 1)]
    public void TheSavedModelReadsLongTextAsItWasTrainedTo(ZeroLongTextHandling handling, int stride, int maxWindows)
    {
        using var model = TinyBert();
        var encoder = Encoder(16, handling, stride, maxWindows);
        var mlContext = new MLContext(seed: 0);
        using var transformer = Transformer(model, encoder, mlContext);
        using var folder = new TempFolder("zero-longtext-");
        string zip = folder.Combine("model.zip");
        mlContext.Model.Save(transformer, Keyed(mlContext).Schema, zip);

        var loaded = mlContext.Model.Load(zip, out _);
        Assert.AreEqual(new BertLongText(handling, stride, maxWindows), LoadedEncoder(loaded).LongText);
        var before = Scores(transformer, Keyed(mlContext));
        var after = Scores(loaded, Keyed(mlContext));
        for (int row = 0; row < before.Length; row++)
            CollectionAssert.AreEqual(before[row], after[row], $"row {row}");
    }

    private static BertTextEncoder LoadedEncoder(ITransformer loaded)
    {
        var zero = loaded as ZeroTransformer ?? ((TransformerChain<ITransformer>)loaded).OfType<ZeroTransformer>().Single();
        return ((BertScorer)zero.Scorer).Encoder;
    }

    [TestMethod]
    public void AModelSavedBeforeTheHandlingExistedLoadsAsTruncation()
    {
        // Saved by the release before this one (format 0x00010001, no long-text fields): a random two-class BERT over the
        // vocabulary [PAD] [UNK] [CLS] [SEP] [MASK] good bad movie, maximum length 8.
        TorchRuntimeForTests.Load();
        var mlContext = new MLContext(seed: 0);
        var loaded = mlContext.Model.Load(Path.Combine(AppContext.BaseDirectory, "TestData", "tiny-bert-format-1.zip"), out _);
        Assert.AreEqual(BertLongText.Truncate, LoadedEncoder(loaded).LongText);
        var scored = loaded.Transform(mlContext.Data.LoadFromEnumerable(new[] { new SentimentRow { Text = "good movie bad movie good" } }));
        // What that release scored for the row (on an AVX-512 CPU; kernels of other CPUs round the last bit otherwise).
        var scores = scored.GetColumn<VBuffer<float>>("Score").Single().DenseValues().ToArray();
        Assert.AreEqual(2, scores.Length);
        Assert.AreEqual(0.7035194f, scores[0], 1e-6f);
        Assert.AreEqual(0.2964806f, scores[1], 1e-6f);
    }

    // BertScorer.Save writes the maximum sequence length (41 here), then the handling, the stride and the window cap.
    [TestMethod]
    [DataRow(0, 9, "LongTextHandling is 9")]
    [DataRow(1, -1, "WindowStride is -1")]
    [DataRow(1, 39, "WindowStride is 39; expected 0 to 38")]
    [DataRow(2, 0, "MaxWindowsPerRow is 0")]
    public void LongTextFieldsOutOfRangeAreNamed(int field, int value, string expected)
    {
        using var folder = new TempFolder("zero-longtext-");
        string zip = SavedWith(new BertLongText(ZeroLongTextHandling.SlidingWindows, 13, 11), folder);
        using (var archive = ZipFile.Open(zip, ZipArchiveMode.Update))
        {
            var entry = archive.Entries.Single(e => e.FullName.EndsWith("/Model.key", StringComparison.Ordinal) && archive.GetEntry(e.FullName[..^"Model.key".Length] + "vocab.txt") is not null);
            var bytes = new MemoryStream();
            using (var stream = entry.Open())
                stream.CopyTo(bytes);
            byte[] key = bytes.ToArray();
            byte[] run = new[] { 41, (int)ZeroLongTextHandling.SlidingWindows, 13, 11 }.SelectMany(BitConverter.GetBytes).ToArray();
            int at = key.AsSpan().IndexOf(run);
            Assert.IsTrue(at >= 0, "the fields were not found");
            BitConverter.GetBytes(value).CopyTo(key, at + 4 * (field + 1));
            string name = entry.FullName;
            entry.Delete();
            using var patched = archive.CreateEntry(name).Open();
            patched.Write(key);
        }
        var error = LoadError(zip);
        StringAssert.Contains(error.Message, expected);
        StringAssert.Contains(error.Message, "Model.key");
    }

    [TestMethod]
    public void AWindowCapOtherThanOneIsRefusedWithoutSlidingWindows()
    {
        // Options never write it (they hold the cap to 1 unless the handling is SlidingWindows); a crafted file could,
        // and a tagger would then read that many windows' worth of tokens into one window.
        using var folder = new TempFolder("zero-longtext-");
        StringAssert.Contains(LoadError(SavedWith(new BertLongText(ZeroLongTextHandling.Truncate, 0, 11), folder)).Message,
            "MaxWindowsPerRow is 11; expected 1 to 1 with Truncate");
    }

    // The tiny BERT classifier at maximum length 41 reading long text as longText says, saved into folder's model.zip.
    private static string SavedWith(BertLongText longText, TempFolder folder)
    {
        using var model = TinyBert();
        var mlContext = new MLContext(seed: 0);
        using var transformer = Transformer(model, new BertTextEncoder(Vocabulary, true, 41, longText: longText), mlContext);
        string zip = folder.Combine("model.zip");
        mlContext.Model.Save(transformer, Keyed(mlContext).Schema, zip);
        return zip;
    }

    // What loading the zip throws, unwrapped from ML.NET's reflection: an InvalidDataException.
    private static Exception LoadError(string zip)
    {
        var error = Assert.Throws<Exception>(() => new MLContext().Model.Load(zip, out _));
        while (error is TargetInvocationException { InnerException: { } inner })
            error = inner;
        Assert.IsInstanceOfType<InvalidDataException>(error, error.ToString());
        return error;
    }

    [TestMethod]
    public void BadLongTextOptionsAreNamed()
    {
        var mlContext = new MLContext(seed: 0);
        (string Expected, Action<ZeroTextClassificationOptions> Set)[] cases =
        {
            ("LongTextHandling is 7", o => o.LongTextHandling = (ZeroLongTextHandling)7),
            ("WindowStride is -1; expected 0 to 61", o => { o.LongTextHandling = ZeroLongTextHandling.SlidingWindows; o.WindowStride = -1; }),
            ("WindowStride is 62; expected 0 to 61", o => { o.LongTextHandling = ZeroLongTextHandling.SlidingWindows; o.WindowStride = 62; }),
            ("WindowStride is 61; expected 0 to 60", o => { o.LongTextHandling = ZeroLongTextHandling.SlidingWindows; o.WindowStride = 61; o.Sentence2ColumnName = "Second"; }),
            ("WindowStride is 16; expected 0 unless LongTextHandling is SlidingWindows", o => o.WindowStride = 16),
            ("MaxWindowsPerRow is 0; expected 1 to 1048576", o => { o.LongTextHandling = ZeroLongTextHandling.SlidingWindows; o.MaxWindowsPerRow = 0; }),
        };
        foreach (var (expected, set) in cases)
        {
            var options = new ZeroTextClassificationOptions { CheckpointPath = "unused", Sentence1ColumnName = "Text", MaxSequenceLength = 64 };
            set(options);
            var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().TextClassification(options), expected);
            StringAssert.Contains(error.Message, "ZeroTextClassificationOptions." + expected);
        }
    }

    [TestMethod]
    [TestCategory("bert")]
    public void MiniLmFineTunedInWindowsOnBrownPassagesOnTwoRanksClassifiesHeldOutTextsAndReloads()
    {
        // Two passages of 110 tokens (about 125 WordPieces: 3 windows of 64) from each of 12 texts of two genres; the
        // first 8 texts of each genre train, the other 4 test, so no text has passages on both sides.
        var passages = BrownCorpus.Passages(new[] { "news", "religion" }, wordsPerPassage: 110, textsPerGenre: 12)
            .GroupBy(p => p.File).SelectMany(text => text.Take(2)).ToArray();
        var testFiles = passages.GroupBy(p => p.Label).SelectMany(genre => genre.Select(p => p.File).Distinct().Skip(8)).ToHashSet();
        var mlContext = new MLContext(seed: 0);
        var train = mlContext.Data.LoadFromEnumerable(passages.Where(p => !testFiles.Contains(p.File)));
        var test = mlContext.Data.LoadFromEnumerable(passages.Where(p => testFiles.Contains(p.File)));
        var options = new ZeroTextClassificationOptions
        {
            CheckpointPath = MiniLm.Directory(), Sentence1ColumnName = "Text", WorldSize = 2, BatchSize = 4, MaxEpoch = 3, LearningRate = 1e-4,
            MaxSequenceLength = 64, LongTextHandling = ZeroLongTextHandling.SlidingWindows, WindowStride = 16, MaxWindowsPerRow = 3,
            DeepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Fp32 },
        };
        var model = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(mlContext.Zero().TextClassification(options))
            .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel")).Fit(train);

        var scored = model.Transform(test);
        double accuracy = mlContext.MulticlassClassification.Evaluate(scored).MicroAccuracy;
        Console.WriteLine($"held-out accuracy {accuracy:F4}");
        Assert.IsTrue(accuracy >= 0.8, $"held-out accuracy {accuracy:F4} on {testFiles.Count * 2} passages; chance is 0.5");

        using var folder = new TempFolder("zero-longtext-");
        string path = folder.Combine("model.zip");
        mlContext.Model.Save(model, train.Schema, path);
        var loaded = mlContext.Model.Load(path, out _);
        Assert.AreEqual(new BertLongText(ZeroLongTextHandling.SlidingWindows, 16, 3), LoadedEncoder(loaded).LongText);
        var before = Scores(model, test);
        var after = Scores(loaded, test);
        for (int row = 0; row < before.Length; row++)
            CollectionAssert.AreEqual(before[row], after[row], $"row {row}");
        // One row at a time (PredictionEngine) reads it in the same windows.
        var engine = mlContext.Model.CreatePredictionEngine<BrownPassage, SentimentPrediction>(loaded);
        var first = mlContext.Data.CreateEnumerable<BrownPassage>(test, reuseRowObject: false).First();
        var single = engine.Predict(first).Score;
        for (int c = 0; c < single.Length; c++)
            Assert.AreEqual(before[0][c], single[c], 1e-5, $"class {c}");
    }
}
