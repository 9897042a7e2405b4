using Microsoft.ML.Data;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.Models.Bert;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// Token classification on a tiny BERT (TinyBertFolder) and sentences of its words tagged by word class: it fits on 2
/// ranks, tags each word, saves, loads and predicts; word labels align to first sub-tokens; words past the maximum
/// length get the missing key 0; a label of the wrong length is refused naming the row, the column and both counts.
/// </summary>
[TestClass]
public sealed class NamedEntityRecognitionTests
{
    private static TempFolder? _models;
    private static string _tiny = "";

    [ClassInitialize]
    public static void WriteModel(TestContext context)
    {
        _models = new TempFolder("zero-ner-");
        _tiny = TinyBertFolder.Write(_models.Combine("tiny"), hiddenDropout: 0.1);
    }

    [ClassCleanup]
    public static void DeleteModel() => _models?.Dispose();

    private static readonly Dictionary<string, string> TagOfWord = new()
    {
        ["the"] = "DET", ["a"] = "DET", ["this"] = "DET", ["i"] = "PRON", ["it"] = "PRON", ["is"] = "VERB", ["was"] = "VERB", ["love"] = "VERB",
        ["not"] = "ADV", ["very"] = "ADV", ["good"] = "ADJ", ["great"] = "ADJ", ["bad"] = "ADJ", ["worst"] = "ADJ", ["best"] = "ADJ",
        ["food"] = "NOUN", ["service"] = "NOUN", ["movie"] = "NOUN", ["phone"] = "NOUN", ["and"] = "CONJ", ["."] = "PUNCT", ["!"] = "PUNCT",
    };

    public sealed class TaggedSentence
    {
        public string Sentence { get; set; } = "";

        public string[] Label { get; set; } = Array.Empty<string>();
    }

    private sealed class SentenceOnly
    {
        public string Sentence { get; set; } = "";
    }

    private sealed class TagPrediction
    {
        public uint[] PredictedLabel { get; set; } = Array.Empty<uint>();
    }

    // "the food is very good ." and the like: each word's tag is its word class.
    private static TaggedSentence[] Sentences(int count, int seed)
    {
        var random = new Random(seed);
        string Pick(params string[] words) => words[random.Next(words.Length)];
        return Enumerable.Range(0, count).Select(_ =>
        {
            var words = new List<string> { Pick("the", "a", "this"), Pick("food", "service", "movie", "phone"), Pick("is", "was") };
            if (random.Next(2) == 0)
                words.Add(Pick("not", "very"));
            words.Add(Pick("good", "great", "bad", "worst", "best"));
            if (random.Next(2) == 0)
                words.AddRange(new[] { "and", "i", "love", "it" });
            words.Add(Pick(".", "!"));
            return new TaggedSentence { Sentence = string.Join(' ', words), Label = words.Select(w => TagOfWord[w]).ToArray() };
        }).ToArray();
    }

    private static ZeroNamedEntityRecognitionOptions Options(int maxSequenceLength = 32) => new()
    {
        CheckpointPath = _tiny, WorldSize = 2, BatchSize = 16, MaxEpoch = 4, MaxSequenceLength = maxSequenceLength, LearningRate = 1e-2, Seed = 7,
        Progress = ZeroProgress.None, DeepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Fp32 },
    };

    private static (IDataView Data, ITransformer Keys) Keyed(MLContext mlContext, TaggedSentence[] rows, ITransformer? keys = null)
    {
        var data = mlContext.Data.LoadFromEnumerable(rows);
        keys ??= mlContext.Transforms.Conversion.MapValueToKey("Label").Fit(data);
        return (keys.Transform(data), keys);
    }

    private static uint[][] Predictions(IDataView scored) =>
        scored.GetColumn<VBuffer<uint>>("PredictedLabel").Select(v => v.DenseValues().ToArray()).ToArray();

    [TestMethod]
    public void TwoRanksFitAndTheTaggerTagsEachWordSavesLoadsAndPredicts()
    {
        var mlContext = new MLContext(seed: 0);
        // An empty sentence trains as [CLS] [SEP] with no labelled token.
        var (train, keys) = Keyed(mlContext, Sentences(320, seed: 0).Append(new TaggedSentence()).ToArray());
        var testRows = Sentences(60, seed: 1);
        var (test, _) = Keyed(mlContext, testRows, keys);
        var trainer = mlContext.Zero().NamedEntityRecognition(Options());
        var model = trainer.Fit(train);

        var scored = model.Transform(test);
        var predicted = Predictions(scored);
        var truth = test.GetColumn<VBuffer<uint>>("Label").Select(v => v.DenseValues().ToArray()).ToArray();
        for (int row = 0; row < testRows.Length; row++)
            Assert.AreEqual(truth[row].Length, predicted[row].Length, $"row {row}: one key per word");
        double accuracy = truth.Zip(predicted, (t, p) => t.Zip(p).Count(pair => pair.First == pair.Second)).Sum() / (double)truth.Sum(t => t.Length);
        double majority = truth.SelectMany(t => t).GroupBy(k => k).Max(g => g.Count()) / (double)truth.Sum(t => t.Length);
        Console.WriteLine($"tiny BERT word accuracy {accuracy:F3}, most frequent tag {majority:F3}");
        Assert.IsTrue(accuracy > majority + 0.2, $"accuracy {accuracy:F3} against the most frequent tag's {majority:F3}");

        // The token-level evaluator counts the same words.
        var metrics = mlContext.Zero().EvaluateNamedEntityRecognition(scored);
        Assert.AreEqual(truth.Sum(t => t.Length), metrics.Words);
        Assert.AreEqual(accuracy, metrics.Accuracy, 1e-12);
        VBuffer<ReadOnlyMemory<char>> keyValues = default;
        train.Schema["Label"].GetKeyValues(ref keyValues);
        var nounKey = (uint)Array.IndexOf(keyValues.DenseValues().Select(v => v.ToString()).ToArray(), "NOUN") + 1;
        var pairs = truth.Zip(predicted, (t, p) => t.Zip(p)).SelectMany(w => w).ToArray();
        Assert.AreEqual(pairs.Count(p => p.First == nounKey && p.Second == nounKey) / (double)pairs.Count(p => p.Second == nounKey), metrics.PerTag["NOUN"].Precision, 1e-12);
        Assert.AreEqual(pairs.Count(p => p.First == nounKey && p.Second == nounKey) / (double)pairs.Count(p => p.First == nounKey), metrics.PerTag["NOUN"].Recall, 1e-12);
        Assert.AreEqual(pairs.Count(p => p.First == nounKey), metrics.PerTag["NOUN"].Support);

        // MapKeyToValue turns PredictedLabel back into the tag strings.
        var tags = mlContext.Transforms.Conversion.MapKeyToValue("Tags", "PredictedLabel").Fit(scored).Transform(scored)
            .GetColumn<VBuffer<ReadOnlyMemory<char>>>("Tags").First().DenseValues().Select(t => t.ToString()).ToArray();
        Assert.AreEqual(testRows[0].Label.Length, tags.Length);
        Assert.IsTrue(tags.All(TagOfWord.Values.Contains), string.Join(" ", tags));

        var outputType = (VectorDataViewType)scored.Schema["PredictedLabel"].Type;
        Assert.AreEqual(((VectorDataViewType)train.Schema["Label"].Type).ItemType, outputType.ItemType, "PredictedLabel is keyed as the label");

        using var folder = new TempFolder("zero-ner-zip-");
        string path = folder.Combine("model.zip");
        mlContext.Model.Save(model, train.Schema, path);
        var loaded = mlContext.Model.Load(path, out _);
        Assert.IsInstanceOfType<ZeroNamedEntityRecognitionTransformer>(loaded);
        var reloaded = Predictions(loaded.Transform(test));
        for (int row = 0; row < testRows.Length; row++)
            CollectionAssert.AreEqual(predicted[row], reloaded[row], $"row {row}: the loaded model tags otherwise");

        var engine = mlContext.Model.CreatePredictionEngine<SentenceOnly, TagPrediction>(loaded);
        CollectionAssert.AreEqual(predicted[3], engine.Predict(new SentenceOnly { Sentence = testRows[3].Sentence }).PredictedLabel, "PredictionEngine against Transform");
        Assert.AreEqual(0, engine.Predict(new SentenceOnly { Sentence = "" }).PredictedLabel.Length, "an empty sentence has no words");
    }

    [TestMethod]
    public void TheFirstSubTokenOfEachWordCarriesItsLabelAndTheRestAreIgnored()
    {
        var encoder = new BertTextEncoder(File.ReadAllBytes(Path.Combine(_tiny, "vocab.txt")), lowerCase: true, maxSequenceLength: 32);
        int Id(string token) => Array.IndexOf(TinyBertFolder.Vocabulary, token);
        // "food." is two WordPieces (food, .); "zebra" is one [UNK]; tokenized alone, an empty-after-normalization word becomes [UNK].
        var row = encoder.EncodeWords(new[] { "The", "food.", "zebra", "\u0007" });
        var window = row.Windows.Single();
        CollectionAssert.AreEqual(new[] { Id("[CLS]"), Id("the"), Id("food"), Id("."), Id("[UNK]"), Id("[UNK]"), Id("[SEP]") }, window.Ids);
        CollectionAssert.AreEqual(new[] { 1, 2, 4, 5 }, window.WordStarts);
        CollectionAssert.AreEqual(new[] { (0, 1), (0, 2), (0, 4), (0, 5) }, row.Readings);
        var ignored = TokenEpochShard.Ignored;
        CollectionAssert.AreEqual(new[] { ignored, 3, 1, ignored, 0, ignored, ignored }, TokenEpochShard.TokenLabels(row, new[] { 3, 1, 0, -1 }).Single().TokenLabels,
            "labels on first sub-tokens; the second piece of food., [CLS], [SEP] and a word without a key are ignored");
    }

    [TestMethod]
    public void WordsPastTheMaximumLengthAreDroppedAndPredictedAsTheMissingKey()
    {
        // MaxSequenceLength 6 keeps 4 tokens: "the food." takes 3, "is" the 4th; "good" and "!" are cut.
        var encoder = new BertTextEncoder(File.ReadAllBytes(Path.Combine(_tiny, "vocab.txt")), lowerCase: true, maxSequenceLength: 6);
        var row = encoder.EncodeWords(new[] { "the", "food.", "is", "good", "!" });
        Assert.AreEqual(6, row.Windows.Single().Ids.Length);
        CollectionAssert.AreEqual(new[] { 1, 2, 4 }, row.Windows.Single().WordStarts);
        Assert.AreEqual(3, row.Readings.Length);
        // A word whose first piece fits is kept, its other pieces cut.
        CollectionAssert.AreEqual(new[] { 1, 2, 3, 4 }, encoder.EncodeWords(new[] { "the", "a", "i", "food." }).Windows.Single().WordStarts);

        var mlContext = new MLContext(seed: 0);
        var (train, keys) = Keyed(mlContext, Sentences(64, seed: 0));
        var options = Options(maxSequenceLength: 6);
        options.MaxEpoch = 1;
        using var model = mlContext.Zero().NamedEntityRecognition(options).Fit(train);
        var rows = Sentences(20, seed: 2);
        var predicted = Predictions(model.Transform(Keyed(mlContext, rows, keys).Data));
        for (int i = 0; i < rows.Length; i++)
        {
            int words = rows[i].Label.Length;
            Assert.AreEqual(words, predicted[i].Length, $"row {i}: one key per word, cut words included");
            Assert.IsTrue(predicted[i].Take(4).All(key => key != 0), $"row {i}: the first 4 words fit and are tagged");
            Assert.IsTrue(predicted[i].Skip(4).All(key => key == 0), $"row {i}: words past MaxSequenceLength get the missing key 0");
        }
    }

    private static BertTextEncoder WindowEncoder(int maxSequenceLength, int stride, int maxWindows) =>
        new(File.ReadAllBytes(Path.Combine(_tiny, "vocab.txt")), lowerCase: true, maxSequenceLength,
            longText: new BertLongText(ZeroLongTextHandling.SlidingWindows, stride, maxWindows));

    [TestMethod]
    public void SlidingWindowsCutTheTokensAndReadEachWordFromTheWindowWhereItHasTheMostContext()
    {
        // MaxSequenceLength 6: windows of 4 tokens, the next one 3 on (stride 1). Tokens: the food . is good ! the.
        var encoder = WindowEncoder(6, stride: 1, maxWindows: 8);
        var row = encoder.EncodeWords(new[] { "the", "food.", "is", "good", "!", "the" });
        Assert.AreEqual(2, row.Windows.Length);
        int Id(string token) => Array.IndexOf(TinyBertFolder.Vocabulary, token);
        CollectionAssert.AreEqual(new[] { Id("[CLS]"), Id("the"), Id("food"), Id("."), Id("is"), Id("[SEP]") }, row.Windows[0].Ids);
        CollectionAssert.AreEqual(new[] { Id("[CLS]"), Id("is"), Id("good"), Id("!"), Id("the"), Id("[SEP]") }, row.Windows[1].Ids);
        Assert.AreEqual(0, row.Windows[0].FirstWord);
        Assert.AreEqual(2, row.Windows[1].FirstWord);
        CollectionAssert.AreEqual(new[] { 1, 2, 4 }, row.Windows[0].WordStarts);
        CollectionAssert.AreEqual(new[] { 1, 2, 3, 4 }, row.Windows[1].WordStarts);
        // "is" sits at an edge of both windows (no context either side): the earlier reads it. "good" has one token
        // before it in the second window, "!" one after.
        CollectionAssert.AreEqual(new[] { (0, 1), (0, 2), (0, 4), (1, 2), (1, 3), (1, 4) }, row.Readings);
        var ignored = TokenEpochShard.Ignored;
        var labels = TokenEpochShard.TokenLabels(row, new[] { 0, 1, 2, 3, 4, 5 });
        CollectionAssert.AreEqual(new[] { ignored, 0, 1, ignored, 2, ignored }, labels[0].TokenLabels, "the first window trains on the, food. and is");
        CollectionAssert.AreEqual(new[] { ignored, 2, 3, 4, 5, ignored }, labels[1].TokenLabels, "the second on is again, and the rest");

        // Two windows read 7 tokens: the 8th, "a", is dropped.
        Assert.AreEqual(6, WindowEncoder(6, stride: 1, maxWindows: 2).EncodeWords(new[] { "the", "food.", "is", "good", "!", "the", "a" }).Readings.Length);
        // A window can hold only the rest of a word cut across two: it reads no word.
        var cut = WindowEncoder(6, stride: 0, maxWindows: 8).EncodeWords(new[] { "the", "a", "i", "food." });
        Assert.AreEqual(2, cut.Windows.Length);
        CollectionAssert.AreEqual(Array.Empty<int>(), cut.Windows[1].WordStarts);
        CollectionAssert.AreEqual(new[] { (0, 1), (0, 2), (0, 3), (0, 4) }, cut.Readings);
        // An empty sentence is one empty window.
        Assert.AreEqual(2, WindowEncoder(6, stride: 1, maxWindows: 8).EncodeWords(Array.Empty<string>()).Windows.Single().Ids.Length);
    }

    [TestMethod]
    public void SlidingWindowsTagEveryWordOfALongSentenceAsItsReadingWindowAloneAndSaveAndLoad()
    {
        var mlContext = new MLContext(seed: 0);
        // Three sentences in one: 15 to 27 words, each one token, read in windows of 10 tokens that overlap by 4.
        TaggedSentence[] Long(int count, int seed) => Sentences(3 * count, seed).Chunk(3).Select(three => new TaggedSentence
        {
            Sentence = string.Join(' ', three.Select(s => s.Sentence)), Label = three.SelectMany(s => s.Label).ToArray(),
        }).ToArray();
        var (train, keys) = Keyed(mlContext, Long(320, seed: 0));
        var testRows = Long(30, seed: 1);
        var test = Keyed(mlContext, testRows, keys).Data;
        var options = Options(maxSequenceLength: 12);
        options.LongTextHandling = ZeroLongTextHandling.SlidingWindows;
        options.WindowStride = 4;
        options.MaxEpoch = 8;
        using var model = mlContext.Zero().NamedEntityRecognition(options).Fit(train);

        var predicted = Predictions(model.Transform(test));
        var truth = test.GetColumn<VBuffer<uint>>("Label").Select(v => v.DenseValues().ToArray()).ToArray();
        for (int row = 0; row < testRows.Length; row++)
            Assert.IsTrue(predicted[row].Length == truth[row].Length && predicted[row].All(key => key != 0), $"row {row}: every word is tagged");
        double accuracy = truth.Zip(predicted, (t, p) => t.Zip(p).Count(pair => pair.First == pair.Second)).Sum() / (double)truth.Sum(t => t.Length);
        double majority = truth.SelectMany(t => t).GroupBy(k => k).Max(g => g.Count()) / (double)truth.Sum(t => t.Length);
        Console.WriteLine($"tiny BERT word accuracy in windows {accuracy:F3}, most frequent tag {majority:F3}");
        Assert.IsTrue(accuracy > majority + 0.2, $"accuracy {accuracy:F3} against the most frequent tag's {majority:F3}");

        // Each word's key is the one its reading window gives when scored as a sentence of its own, one window a
        // forward so that no padding differs. It shares the model's weights, which the model disposes.
        var oneAtATime = new ZeroNamedEntityRecognitionTransformer(model.Scorer, model.Outputs, scoringBatchSize: 1);
        var engine = mlContext.Model.CreatePredictionEngine<SentenceOnly, TagPrediction>(oneAtATime);
        for (int row = 0; row < 5; row++)
        {
            var words = WordLabelWords(testRows[row].Sentence);
            var encoded = model.Scorer.Encoder.EncodeWords(words);
            var alone = encoded.Windows.Select(window => engine.Predict(new SentenceOnly
            {
                Sentence = string.Join(' ', words.Skip(window.FirstWord).Take(window.Ids.Length - 2)),
            }).PredictedLabel).ToArray();
            var expected = encoded.Readings.Select(reading => alone[reading.Window][reading.Position - 1]).ToArray();
            CollectionAssert.AreEqual(expected, predicted[row], $"row {row}: each word as its reading window tags it");
        }

        using var folder = new TempFolder("zero-ner-windows-");
        string path = folder.Combine("model.zip");
        mlContext.Model.Save(model, train.Schema, path);
        var loaded = (ZeroNamedEntityRecognitionTransformer)mlContext.Model.Load(path, out _);
        using (loaded)
        {
            Assert.AreEqual(new BertLongText(ZeroLongTextHandling.SlidingWindows, 4, options.MaxWindowsPerRow), loaded.Scorer.Encoder.LongText);
            var reloaded = Predictions(loaded.Transform(test));
            for (int row = 0; row < testRows.Length; row++)
                CollectionAssert.AreEqual(predicted[row], reloaded[row], $"row {row}: the loaded model tags otherwise");
        }
    }

    [TestMethod]
    public void ATaggerSavedBeforeTheLongTextHandlingLoadsAsTruncation()
    {
        // Saved by the release before this one (format 0x00010001, no long-text fields): the tiny BERT fine-tuned for one
        // step on three sentences, maximum length 8, so a 10-word sentence keeps 6 words.
        var mlContext = new MLContext(seed: 0);
        var loaded = mlContext.Model.Load(Path.Combine(AppContext.BaseDirectory, "TestData", "tiny-tagger-format-1.zip"), out _);
        var tagger = ((TransformerChain<ITransformer>)loaded).OfType<ZeroNamedEntityRecognitionTransformer>().Single();
        Assert.AreEqual(BertLongText.Truncate, tagger.Scorer.Encoder.LongText);
        // The tagger alone: the pipeline's first step keys a Label column, which text to tag does not have.
        var scored = tagger.Transform(mlContext.Data.LoadFromEnumerable(new[] { new SentenceOnly { Sentence = "the service was not very good and i love it" } }));
        // What that release predicted for the sentence (each kept word's top logit leads the next by 0.12 or more, far
        // beyond the last-bit differences of other CPUs' kernels).
        CollectionAssert.AreEqual(new uint[] { 6, 4, 2, 6, 6, 6, 0, 0, 0, 0 }, Predictions(scored).Single());
    }

    private static string[] WordLabelWords(string sentence) => Microsoft.ML.Zero.Data.WordLabelColumns.Words(sentence);

    [TestMethod]
    public void ALabelWithoutOneKeyPerWordIsRefusedNamingTheRowTheColumnAndBothCounts()
    {
        var mlContext = new MLContext(seed: 0);
        var rows = Sentences(8, seed: 0);
        rows[5].Label = rows[5].Label.Skip(1).ToArray();
        var (train, _) = Keyed(mlContext, rows);
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => mlContext.Zero().NamedEntityRecognition(Options()).Fit(train));
        foreach (string part in new[] { "Row 5", "'Label'", $"{rows[5].Label.Length} keys", "'Sentence'", $"{rows[5].Label.Length + 1} words" })
            StringAssert.Contains(error.Message, part);

        // A scalar key label is refused by name in the pipeline's schema check (EstimatorChain.Fit asks GetOutputSchema first).
        var scalar = mlContext.Data.LoadFromEnumerable(new[] { new SentenceOnly { Sentence = "the food" } });
        var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label", "Sentence").Append(mlContext.Zero().NamedEntityRecognition(Options()));
        var shapeError = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => pipeline.Fit(scalar));
        StringAssert.Contains(shapeError.Message, "vector of keys");
    }

    [TestMethod]
    public void ValidationReportsTokenAccuracyAndMacroF1AndKeepsTheBestModelByMacroF1()
    {
        var mlContext = new MLContext(seed: 0);
        var lines = TrainerLog.Capture(mlContext);
        var (train, keys) = Keyed(mlContext, Sentences(160, seed: 0));
        var validationRows = Sentences(40, seed: 3);
        var options = Options();
        options.ValidationSet = Keyed(mlContext, validationRows, keys).Data;
        options.EvaluationStrategy = ZeroEvaluationStrategy.Steps;
        options.EvaluationSteps = 4;
        options.MetricForBestModel = ZeroMetric.MacroF1;
        options.LoadBestModelAtEnd = true;
        using var model = mlContext.Zero().NamedEntityRecognition(options).Fit(train);

        var evaluations = lines.Select(line => System.Text.RegularExpressions.Regex.Match(line, @"^Validation after step (\d+) .*: accuracy (\d+\.\d+), macro F1 (\d+\.\d+)"))
            .Where(m => m.Success).ToList();
        Assert.IsTrue(evaluations.Count >= 2, string.Join("\n", lines));
        var best = evaluations.MaxBy(m => double.Parse(m.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture))!;
        // The model kept is the best one: its word accuracy over the validation set is the one logged with the best macro F1.
        var truth = options.ValidationSet.GetColumn<VBuffer<uint>>("Label").Select(v => v.DenseValues().ToArray()).ToArray();
        var predicted = Predictions(model.Transform(options.ValidationSet));
        double accuracy = truth.Zip(predicted, (t, p) => t.Zip(p).Count(pair => pair.First == pair.Second)).Sum() / (double)truth.Sum(t => t.Length);
        Assert.AreEqual(double.Parse(best.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture), accuracy, 1e-4, string.Join("\n", lines));
    }

    [TestMethod]
    public void EarlyStoppingEndsTrainingOnceWordAccuracyStopsImproving()
    {
        var mlContext = new MLContext(seed: 0);
        var lines = TrainerLog.Capture(mlContext);
        var (train, keys) = Keyed(mlContext, Sentences(160, seed: 0));
        var options = Options();
        options.ValidationSet = Keyed(mlContext, Sentences(40, seed: 3), keys).Data;
        options.EvaluationStrategy = ZeroEvaluationStrategy.Steps;
        options.EvaluationSteps = 4;
        // Accuracy lies in [0, 1]: no evaluation improves on another by more than 1, so the second one ends training.
        options.EarlyStoppingPatience = 1;
        options.EarlyStoppingThreshold = 1;
        using var model = mlContext.Zero().NamedEntityRecognition(options).Fit(train);
        string log = string.Join("\n", lines);
        StringAssert.Contains(log, "Early stopping after step 8", log);
        Assert.IsFalse(log.Contains("Validation after step 12"), log);
    }

    [TestMethod]
    public void OptionsOfOtherTasksAreRefusedByName()
    {
        var mlContext = new MLContext(seed: 0);
        var options = Options();
        options.MetricForBestModel = ZeroMetric.LogLoss;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().NamedEntityRecognition(options)).Message, "MetricForBestModel");
        options = Options();
        options.Sentence2ColumnName = "Second";
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().NamedEntityRecognition(options)).Message, "Sentence2ColumnName");
        options = Options();
        options.LongTextHandling = ZeroLongTextHandling.HeadAndTail;
        var headAndTail = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().NamedEntityRecognition(options)).Message;
        StringAssert.Contains(headAndTail, "LongTextHandling");
        StringAssert.Contains(headAndTail, "SlidingWindows");
        // Each word read is an output of a row: windows may read at most 2^20 tokens.
        options = Options();
        options.LongTextHandling = ZeroLongTextHandling.SlidingWindows;
        options.MaxWindowsPerRow = 1 << 20;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().NamedEntityRecognition(options)).Message, "MaxWindowsPerRow");
    }
}
