using System.Diagnostics;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.SampleData;
using Microsoft.ML.Zero.Samples.OnnxServing;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>
/// Scoring speed of one fine-tuned all-MiniLM-L6-v2 sentiment classifier, loaded from its zip, against its ONNX export
/// in ONNX Runtime (through samples/OnnxServing's OnnxTextClassifier), on the same test rows and the same threads:
/// batched <c>Transform</c> + a cursor against 64-row session runs, and <c>PredictionEngine.Predict</c> against
/// single-row session runs. Then the cheap levers (inference mode, no autograd on the weights, unfused attention, one
/// thread for single rows, rows unsorted), each on its own against the library's behaviour.
/// </summary>
internal static class ScoringBenchmark
{
    public const string Name = "scoring";

    private const int Ranks = 2, TrainBatch = 16, Epochs = 1, MaxSequenceLength = 128, ScoringBatch = 64;
    private const double LearningRate = 1e-4;
    // Every way of scoring is measured once per round, the rounds one after another, so that a slow spell of the shared
    // machine falls on all of them alike; single-row latencies pool the rounds' rows.
    private const int Rounds = 5, SingleRowWarmup = 20;

    /// <summary>One way of scoring: batched rows/s (median, slowest and fastest round), single-row latency (median, 90th percentile, mean), null where not measured.</summary>
    public sealed record Speed(string Path, double? RowsPerSecond, double? SlowestRowsPerSecond, double? FastestRowsPerSecond, double? MedianMs, double? P90Ms, double? MeanMs);

    public sealed record Result(double Accuracy, double? FitSeconds, int TestRows, int Threads, double MeanTokens, double MeanPaddedTokens,
        double MeanSortedPaddedTokens, double MaxProbabilityDifference, string LoadAverage, Speed Ours, Speed Onnx, Speed OnnxSorted, Speed[] Levers);

    public static string Run()
    {
        var r = ChildProcess.Run<Result>(Name);
        double batched = r.Ours.RowsPerSecond!.Value / r.Onnx.RowsPerSecond!.Value, single = r.Ours.MedianMs!.Value / r.Onnx.MedianMs!.Value;
        double onnxBatching = r.Onnx.RowsPerSecond.Value / (1e3 / r.Onnx.MeanMs!.Value);
        var lines = new List<string>
        {
            "## Scoring speed: Transform and PredictionEngine against ONNX Runtime",
            "",
            $"all-MiniLM-L6-v2 fine-tuned for {Epochs} epoch on the UCI Sentiment Labelled Sentences (`TrainTestSplit(0.2, seed: 0)`, {Ranks} ranks x {TrainBatch}, " +
            $"AdamW lr {LearningRate:0e0}, MaxSequenceLength {MaxSequenceLength}, fp32; test accuracy {r.Accuracy:F4}), saved, loaded with `mlContext.Model.Load`, " +
            "and exported with `mlContext.Zero().ExportToOnnx`; ONNX Runtime 1.31.1 runs the export through samples/OnnxServing's `OnnxTextClassifier` " +
            $"(its tokenization included, as ours is), with `IntraOpNumThreads` = {r.Threads}, the libtorch thread count. " +
            $"Same {r.TestRows} test rows for both ({r.MeanTokens:F1} WordPieces a row on average), one process. Batched: `Transform` + a cursor reading Score, " +
            $"{ScoringBatch} rows a forward, against `Probabilities` of {ScoringBatch} rows at a time in file order; rows/s is the median of {Rounds} passes. " +
            $"Single row: `PredictionEngine.Predict` against `Probabilities` of one row, every test row in turn ({Rounds} times, after {SingleRowWarmup} untimed rows). " +
            $"The two agree to {r.MaxProbabilityDifference:0.0e0} in every probability.",
            "",
            "| scoring | batched rows/s (slowest–fastest round) | single row, median | single row, p90 | single row, mean |",
            "|---|---|---|---|---|",
            Row(r.Ours),
            Row(r.Onnx),
            Row(r.OnnxSorted),
            "",
            $"Goals: batched throughput {batched:F2}x ONNX Runtime's (goal at least 1.0x: {Met(batched >= 1.0)}); single-row latency {single:F2}x " +
            $"ONNX Runtime's (goal at most 1.2x: {Met(single <= 1.2)}); ONNX Runtime in {ScoringBatch}-row batches is {onnxBatching:F2}x as fast as " +
            $"ONNX Runtime scoring one row at a time (rows/s against 1 / mean latency; goal at least 3x: {Met(onnxBatching >= 3)}). " +
            $"Batched, the library reads {BertScorer.DefaultBatchesReadTogether} scoring batches at a time and forwards their rows sorted by length " +
            $"(rows come back in order): a row pads to {r.MeanSortedPaddedTokens:F1} tokens on average instead of {r.MeanPaddedTokens:F1} in file order. " +
            "The third row gives ONNX Runtime the same sorting, to show how much of the batched lead is that.",
            "",
            "Levers, each on its own against the library's behaviour (first row of the table above; same rows, same rounds):",
            "",
            "| lever | batched rows/s | vs library | single row, median | vs library | single row, p90 |",
            "|---|---|---|---|---|---|",
        };
        foreach (var lever in r.Levers)
            lines.Add($"| {lever.Path} | {Number(lever.RowsPerSecond, "F1")} | {Ratio(lever.RowsPerSecond / r.Ours.RowsPerSecond)} | " +
                $"{Number(lever.MedianMs, "F2", " ms")} | {Ratio(r.Ours.MedianMs / lever.MedianMs)} | {Number(lever.P90Ms, "F2", " ms")} |");
        lines.Add("");
        lines.Add("\"vs library\" is the speed-up (above 1.00x: the lever is faster). Of the levers only the sorting by length is the library's behaviour; " +
            $"the others were weighed with these figures and left out. The machine is shared: the load average (1, 5, 15 min) was {r.LoadAverage} at the end of the run. " + Machine.Note());
        return string.Join('\n', lines);
    }

    private static string Row(Speed s) =>
        $"| {s.Path} | {Number(s.RowsPerSecond, "F1")}{(s.RowsPerSecond is null ? "" : $" ({s.SlowestRowsPerSecond:F1}–{s.FastestRowsPerSecond:F1})")} | {Number(s.MedianMs, "F2", " ms")} | {Number(s.P90Ms, "F2", " ms")} | {Number(s.MeanMs, "F2", " ms")} |";

    private static string Number(double? value, string format, string unit = "") => value is { } v ? v.ToString(format) + unit : "";

    private static string Ratio(double? ratio) => ratio is { } r ? $"{r:F2}x" : "";

    private static string Met(bool met) => met ? "met" : "not met";

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
        string export = Path.Combine(folder.Path, "onnx");
        mlContext.Zero().ExportToOnnx(model, export);
        int threads = get_num_threads();
        using var sessionOptions = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1 };
        using var onnx = new OnnxTextClassifier(export, sessionOptions);

        var texts = split.TestSet.GetColumn<string>("Text").ToArray();
        var rows = mlContext.Data.LoadFromEnumerable(texts.Select(text => new TextRow { Text = text }));
        var tokens = texts.Select(text => scorer.Encoder.Encode(text, null).Ids.Length).ToArray();
        var onnxBatches = texts.Chunk(ScoringBatch).ToArray();
        var sortedBatches = SortedBatches(texts, tokens);

        var parameters = scorer.Model.parameters().ToList();
        var attention = scorer.Model.modules().OfType<BertSelfAttention>().ToList();
        IDisposable? inference = null;
        var ways = new List<Way>
        {
            new("Microsoft.ML.Zero (TorchSharp): `Transform`, `PredictionEngine`", () => ReadScores(model.Transform(rows)), SingleRow(mlContext, model)),
            new("ONNX Runtime (exported graph): `Probabilities`, 64 rows / 1 row", () => Array.ForEach(onnxBatches, batch => onnx.Probabilities(batch)),
                text => onnx.Probabilities(new[] { text })),
            new($"ONNX Runtime, rows sorted by length {BertScorer.DefaultBatchesReadTogether} batches at a time (as the library sorts them)",
                () => Array.ForEach(sortedBatches, batch => onnx.Probabilities(batch)), null),
            // inference_mode is per thread: entered around each measurement, on the measuring thread.
            new("inference mode (`torch.inference_mode()` around scoring, besides no_grad)", () => ReadScores(model.Transform(rows)), SingleRow(mlContext, model),
                () => inference = inference_mode(), () => inference!.Dispose()),
            new("no autograd (weights `requires_grad = false` after loading)", () => ReadScores(model.Transform(rows)), SingleRow(mlContext, model),
                () => parameters.ForEach(p => p.requires_grad = false), () => parameters.ForEach(p => p.requires_grad = true)),
            new("unfused attention (softmax(QK^T/sqrt(d) + mask) V instead of `scaled_dot_product_attention`)", () => ReadScores(model.Transform(rows)), SingleRow(mlContext, model),
                () => attention.ForEach(a => a.Fused = false), () => attention.ForEach(a => a.Fused = true)),
            new("1 thread for single rows (`torch.set_num_threads(1)`, against 2)", null, SingleRow(mlContext, model),
                () => set_num_threads(1), () => set_num_threads(threads)),
            new($"rows in file order (`BatchesReadTogether` = 1 instead of {BertScorer.DefaultBatchesReadTogether}: no sorting by length)", () => ReadScores(model.Transform(rows)), null,
                () => scorer.BatchesReadTogether = 1, () => scorer.BatchesReadTogether = BertScorer.DefaultBatchesReadTogether),
        };
        var speeds = Measure(ways, texts);

        double difference = MaxDifference(mlContext.Data.CreateEnumerable<ScorePrediction>(model.Transform(rows), reuseRowObject: false).Select(p => p.Score).ToArray(),
            onnxBatches.SelectMany(batch => onnx.Probabilities(batch)).ToArray());
        return new Result(accuracy, fitSeconds, texts.Length, threads, tokens.Average(), PaddedTokens(onnxBatches.Select(b => b.Length).ToArray(), tokens),
            PaddedTokens(sortedBatches.Select(b => b.Length).ToArray(), SortedTokens(tokens)), difference,
            File.Exists("/proc/loadavg") ? string.Join(", ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "not known", speeds[0], speeds[1], speeds[2], speeds[3..]);
    }

    /// <summary>A way of scoring: a batched pass over the rows and a single-row call (either may be null), set up and torn down around each measurement.</summary>
    private sealed record Way(string Path, Action? Batched, Action<string>? Single, Action? Setup = null, Action? Teardown = null);

    private static Speed[] Measure(List<Way> ways, string[] texts)
    {
        var passes = ways.Select(_ => new List<double>()).ToArray();
        var latencies = ways.Select(_ => new List<double>()).ToArray();
        for (int round = 0; round <= Rounds; round++)
        {
            // Round 0 warms every way up and is not counted.
            bool warmup = round == 0;
            for (int w = 0; w < ways.Count; w++)
            {
                var way = ways[w];
                way.Setup?.Invoke();
                try
                {
                    if (way.Batched is { } batched)
                    {
                        long start = Stopwatch.GetTimestamp();
                        batched();
                        if (!warmup)
                            passes[w].Add(texts.Length / Stopwatch.GetElapsedTime(start).TotalSeconds);
                    }
                    if (way.Single is { } single)
                        foreach (var text in warmup ? texts.Take(SingleRowWarmup) : texts)
                        {
                            long start = Stopwatch.GetTimestamp();
                            single(text);
                            if (!warmup)
                                latencies[w].Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
                        }
                }
                finally
                {
                    way.Teardown?.Invoke();
                }
            }
            Console.WriteLine(warmup ? "warmed up" : $"round {round}: " + string.Join("; ", ways.Select((way, w) =>
                $"{way.Path[..Math.Min(24, way.Path.Length)]} {(passes[w].Count > 0 ? passes[w][^1].ToString("F1") : "-")} rows/s")));
        }
        return ways.Select((way, w) =>
        {
            var single = latencies[w].Count > 0 ? new Samples(latencies[w].ToArray()) : null;
            var batched = passes[w].Count > 0 ? passes[w].ToArray() : null;
            return new Speed(way.Path, batched is null ? null : new Samples(batched).Median, batched?.Min(), batched?.Max(),
                single?.Median * 1e3, single?.Quantile(0.9) * 1e3, single?.Seconds.Average() * 1e3);
        }).ToArray();
    }

    // One PredictionEngine for all the single-row calls of a way; it shares the model, so it must not dispose it.
    private static Action<string> SingleRow(MLContext mlContext, ITransformer model)
    {
        var engine = mlContext.Model.CreatePredictionEngine<TextRow, ScorePrediction>(model, new PredictionEngineOptions { OwnsTransformer = false });
        var row = new TextRow();
        var prediction = new ScorePrediction();
        return text =>
        {
            row.Text = text;
            engine.Predict(row, ref prediction);
        };
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

    // The library's regrouping for ONNX Runtime: windows of BatchesReadTogether batches, each sorted by token count.
    private static string[][] SortedBatches(string[] texts, int[] tokens) =>
        Enumerable.Range(0, texts.Length).Chunk(ScoringBatch * BertScorer.DefaultBatchesReadTogether)
            .SelectMany(window => window.OrderBy(row => tokens[row]).Chunk(ScoringBatch)).Select(batch => batch.Select(row => texts[row]).ToArray()).ToArray();

    private static int[] SortedTokens(int[] tokens) =>
        tokens.Chunk(ScoringBatch * BertScorer.DefaultBatchesReadTogether).SelectMany(window => window.Order()).ToArray();

    // Tokens a row costs when each batch (of the sizes given, over the rows in order) pads to its longest row.
    private static double PaddedTokens(int[] batchSizes, int[] tokens)
    {
        double padded = 0;
        int start = 0;
        foreach (int size in batchSizes)
        {
            padded += (double)tokens[start..(start + size)].Max() * size;
            start += size;
        }
        return padded / tokens.Length;
    }

    private static double MaxDifference(float[][] ours, float[][] theirs) =>
        ours.Zip(theirs, (a, b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max()).Max();

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
