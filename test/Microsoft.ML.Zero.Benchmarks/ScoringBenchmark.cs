using System.Diagnostics;
using Microsoft.ML.Data;
using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.SampleData;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>
/// Scoring speed of one fine-tuned all-MiniLM-L6-v2 sentiment classifier, loaded from its zip: batched
/// <c>Transform</c> + a cursor over the test split, and <c>PredictionEngine.Predict</c> one row at a time; then the
/// cheap levers (inference mode, no autograd on the weights, unfused attention, one thread for single rows, and
/// reading rows unsorted) each measured on the same rows.
/// </summary>
internal static class ScoringBenchmark
{
    public const string Name = "scoring";

    private const int Ranks = 2, TrainBatch = 16, Epochs = 1, MaxSequenceLength = 128, ScoringBatch = 64;
    private const double LearningRate = 1e-4;
    private const int BatchedRepeats = 3, SingleRowWarmup = 20;

    /// <summary>One way of scoring: batched rows/s and single-row latency (median and 90th percentile), null where not measured.</summary>
    public sealed record Speed(string Path, double? RowsPerSecond, double? MedianMs, double? P90Ms);

    public sealed record Result(double Accuracy, double? FitSeconds, int TestRows, int Threads, double MeanTokens, double MeanPaddedTokens,
        double MeanSortedPaddedTokens, Speed Ours, Speed[] Levers);

    public static string Run()
    {
        var r = ChildProcess.Run<Result>(Name);
        var lines = new List<string>
        {
            "## Scoring speed: batched Transform and PredictionEngine",
            "",
            $"all-MiniLM-L6-v2 fine-tuned for {Epochs} epoch on the UCI Sentiment Labelled Sentences (`TrainTestSplit(0.2, seed: 0)`, {Ranks} ranks x {TrainBatch}, " +
            $"AdamW lr {LearningRate:0e0}, MaxSequenceLength {MaxSequenceLength}, fp32; test accuracy {r.Accuracy:F4}), saved, and loaded with `mlContext.Model.Load`. " +
            $"Scored on the {r.TestRows} test rows ({r.MeanTokens:F1} WordPieces a row on average) with {r.Threads} libtorch threads: " +
            $"batched is `Transform` + a cursor reading Score, {ScoringBatch} rows a forward (median of {BatchedRepeats} passes); single row is " +
            $"`PredictionEngine.Predict` on every test row in turn, after {SingleRowWarmup} untimed ones. One process, one run.",
            "",
            "| scoring | batched rows/s | single row, median | single row, p90 |",
            "|---|---|---|---|",
            Row(r.Ours),
            "",
            $"Levers, each alone against the library's behaviour (first row; same rows, same process). Batches in file order pad to " +
            $"{r.MeanPaddedTokens:F1} tokens a row on average, sorted by length {r.MeanSortedPaddedTokens:F1}.",
            "",
            "| lever | batched rows/s | vs library | single row, median | vs library | single row, p90 |",
            "|---|---|---|---|---|---|",
        };
        foreach (var lever in r.Levers)
            lines.Add($"| {lever.Path} | {Number(lever.RowsPerSecond, "F1")} | {Ratio(lever.RowsPerSecond / r.Ours.RowsPerSecond)} | " +
                $"{Number(lever.MedianMs, "F2", " ms")} | {Ratio(lever.MedianMs / r.Ours.MedianMs)} | {Number(lever.P90Ms, "F2", " ms")} |");
        lines.Add("");
        lines.Add(Machine.Note());
        return string.Join('\n', lines);
    }

    private static string Row(Speed s) => $"| {s.Path} | {Number(s.RowsPerSecond, "F1")} | {Number(s.MedianMs, "F2", " ms")} | {Number(s.P90Ms, "F2", " ms")} |";

    private static string Number(double? value, string format, string unit = "") => value is { } v ? v.ToString(format) + unit : "";

    private static string Ratio(double? ratio) => ratio is { } r ? $"{r:F2}x" : "";

    /// <summary>The child side; <paramref name="modelZip"/>, when it exists, is a model saved by an earlier run, scored instead of fine-tuning again.</summary>
    public static Result Measure(string? modelZip)
    {
        var mlContext = new MLContext(seed: 0);
        var split = mlContext.Data.TrainTestSplit(mlContext.Data.LoadFromEnumerable(SentimentData.All()), testFraction: 0.2, seed: 0);
        using var folder = new TemporaryFolder();
        string zip = modelZip ?? Path.Combine(folder.Path, "model.zip");
        double? fitSeconds = null;
        if (!File.Exists(zip))
        {
            var watch = Stopwatch.StartNew();
            var trained = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(mlContext.Zero().TextClassification(new ZeroTextClassificationOptions
            {
                CheckpointPath = MiniLm.Directory(), Sentence1ColumnName = "Text", WorldSize = Ranks, BatchSize = TrainBatch, MaxEpoch = Epochs,
                LearningRate = LearningRate, MaxSequenceLength = MaxSequenceLength, ScoringBatchSize = ScoringBatch,
                DeepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Fp32, StepsPerPrint = 25 },
            })).Fit(split.TrainSet);
            fitSeconds = watch.Elapsed.TotalSeconds;
            mlContext.Model.Save(trained, split.TrainSet.Schema, zip);
            (trained as IDisposable)?.Dispose();
        }
        var loaded = mlContext.Model.Load(zip, out _);
        double accuracy = mlContext.MulticlassClassification.Evaluate(loaded.Transform(split.TestSet)).MicroAccuracy;
        var model = loaded is ZeroTransformer zero ? zero : ((TransformerChain<ITransformer>)loaded).LastTransformer as ZeroTransformer
            ?? throw new InvalidOperationException("The saved pipeline does not end with the classifier.");
        var scorer = (BertScorer)model.Scorer;

        var texts = split.TestSet.GetColumn<string>("Text").ToArray();
        var rows = mlContext.Data.LoadFromEnumerable(texts.Select(text => new TextRow { Text = text }));
        var tokens = texts.Select(text => scorer.Encoder.Encode(text, null).Ids.Length).ToArray();

        Speed Score(string path, bool batched = true, bool single = true)
        {
            double? rowsPerSecond = batched ? texts.Length / Samples.Measure(() => ReadScores(model.Transform(rows)), BatchedRepeats, warmup: 1).Median : null;
            var latency = single ? SingleRowLatencies(mlContext, model, texts) : null;
            var speed = new Speed(path, rowsPerSecond, latency?.Median * 1e3, latency?.Quantile(0.9) * 1e3);
            Console.WriteLine($"{speed.Path}: {speed.RowsPerSecond:F1} rows/s batched, single row {speed.MedianMs:F2} ms median, {speed.P90Ms:F2} ms p90");
            return speed;
        }

        var ours = Score("Microsoft.ML.Zero (TorchSharp)");
        var levers = new List<Speed>();
        using (inference_mode())
            levers.Add(Score("inference mode (`torch.inference_mode()` around scoring, instead of no_grad only)"));
        var parameters = scorer.Model.parameters().ToList();
        parameters.ForEach(p => p.requires_grad = false);
        levers.Add(Score("no autograd (weights `requires_grad = false` after loading)"));
        parameters.ForEach(p => p.requires_grad = true);
        var attention = scorer.Model.modules().OfType<BertSelfAttention>().ToList();
        attention.ForEach(a => a.Fused = false);
        levers.Add(Score("unfused attention (softmax(QK^T/sqrt(d) + mask) V instead of scaled_dot_product_attention)"));
        attention.ForEach(a => a.Fused = true);
        int threads = get_num_threads();
        set_num_threads(1);
        levers.Add(Score("1 thread for single rows (`torch.set_num_threads(1)`)", batched: false));
        set_num_threads(threads);
        scorer.BatchesReadTogether = 1;
        levers.Add(Score("rows in file order (`BatchesReadTogether = 1`: no sorting by length)", single: false));
        scorer.BatchesReadTogether = BertScorer.DefaultBatchesReadTogether;

        return new Result(accuracy, fitSeconds, texts.Length, threads, tokens.Average(),
            PaddedTokens(tokens, ScoringBatch), PaddedTokens(tokens.Order().ToArray(), ScoringBatch), ours, levers.ToArray());
    }

    // Each row reads its Score through the cursor's getter, as Evaluate does.
    private static void ReadScores(IDataView scored)
    {
        using var cursor = scored.GetRowCursor(new[] { scored.Schema["Score"] });
        var getScore = cursor.GetGetter<VBuffer<float>>(scored.Schema["Score"]);
        var score = default(VBuffer<float>);
        while (cursor.MoveNext())
            getScore(ref score);
    }

    private static Samples SingleRowLatencies(MLContext mlContext, ITransformer model, string[] texts)
    {
        using var engine = mlContext.Model.CreatePredictionEngine<TextRow, ScorePrediction>(model, new PredictionEngineOptions { OwnsTransformer = false });
        foreach (var text in texts.Take(SingleRowWarmup))
            engine.Predict(new TextRow { Text = text });
        var seconds = new double[texts.Length];
        var prediction = new ScorePrediction();
        for (int i = 0; i < texts.Length; i++)
        {
            var row = new TextRow { Text = texts[i] };
            long start = Stopwatch.GetTimestamp();
            engine.Predict(row, ref prediction);
            seconds[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        return new Samples(seconds);
    }

    // Tokens a row costs when batches of `batch` consecutive rows pad to their longest.
    private static double PaddedTokens(int[] tokens, int batch) =>
        tokens.Chunk(batch).Sum(chunk => (double)chunk.Max() * chunk.Length) / tokens.Length;

    public sealed class TextRow
    {
        public string Text { get; set; } = "";
    }

    public sealed class ScorePrediction
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    private sealed class TemporaryFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("zero-scoring-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
