using System.Diagnostics;
using Microsoft.ML.Data;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.SampleData;

namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>
/// GroupByLength on the UCI sentiment fine-tune: the padding share of the training tokens with and without it (from the
/// shard plan the trainer builds, over the rows' real MiniLM token counts), and the fine-tune's wall time and test
/// accuracy with and without it, same seed and global batch. The fine-tunes run off, on, on, off, so that a load that
/// other work puts on the machine and that drifts during the runs weighs on both settings alike.
/// </summary>
internal static class GroupByLengthBenchmark
{
    public const string Name = "groupbylength";

    public const string Child = "groupbylength-fit";

    private const int Ranks = 2, MicroBatch = 16, Epochs = 2, MaxSequenceLength = 64;
    private const double LearningRate = 1e-4;

    public sealed record Result(bool Grouped, double Accuracy, double FitSeconds, double LoadAtStart);

    public static string Run()
    {
        var (lengths, rows) = TrainingLengths();
        var grouping = new LengthGroupedOrder(lengths, LengthGroupedOrder.DefaultWindowBatches);
        // The batch splits a user might pick for this data; the fine-tune below runs the first.
        var shapes = new[] { (Ranks, MicroBatch), (1, 32), (2, 32), (1, 8) };
        var runs = new[] { false, true, true, false }.Select(grouped =>
        {
            Console.WriteLine($"  fine-tune, GroupByLength {grouped}");
            return ChildProcess.Run<Result>(Child, grouped.ToString());
        }).ToList();

        var lines = new List<string>
        {
            "## Grouping batches by length (`GroupByLength`)",
            "",
            $"`ZeroTextClassificationOptions.GroupByLength` (Hugging Face's `group_by_length`) on the UCI Sentiment Labelled Sentences, " +
            $"`TrainTestSplit(0.2, seed: 0)`: {rows} training rows, tokenized by all-MiniLM-L6-v2's WordPiece and truncated to {MaxSequenceLength} tokens " +
            $"({lengths.Min()} to {lengths.Max()} tokens a row, {lengths.Average():F1} on average). Each micro-batch is padded to its longest row. " +
            $"Padding is the share of padding tokens among all tokens the micro-batches hold (real and padding), over both epochs of the seed-0 " +
            $"order the trainer uses; the window is the default {LengthGroupedOrder.DefaultWindowBatches} global batches, which the quarter-of-an-epoch " +
            "limit makes smaller here.",
            "",
            "| ranks x micro-batch | window (global batches) | padding, shuffled | padding, grouped by length | tokens computed, grouped / shuffled |",
            "|---|---|---|---|---|",
        };
        foreach (var (ranks, micro) in shapes)
        {
            var (shuffled, grouped) = (Padding(lengths, ranks, micro, null), Padding(lengths, ranks, micro, grouping));
            lines.Add($"| {ranks} x {micro} | {grouping.WindowFor(lengths.Length, ranks * micro)} | {100 * shuffled.Share:F1}% | {100 * grouped.Share:F1}% | " +
                $"{(double)grouped.Tokens / shuffled.Tokens:F2} |");
        }
        lines.Add("");
        lines.Add($"The fine-tune of the first section (all-MiniLM-L6-v2, {Ranks} in-process ranks x {MicroBatch}, {Epochs} epochs, AdamW lr {LearningRate:0e0}, fp32, seed 0) " +
            "without and with GroupByLength, each run in a fresh process, in the order off, on, on, off. The machine was shared " +
            "with other work: the load average (1 minute) at each run's start shows how much.");
        lines.Add("");
        lines.Add("| run | GroupByLength | Fit wall time | test accuracy | load average at start |");
        lines.Add("|---|---|---|---|---|");
        foreach (var (r, i) in runs.Select((r, i) => (r, i)))
            lines.Add($"| {i + 1} | {(r.Grouped ? "on" : "off")} | {r.FitSeconds:F0} s | {r.Accuracy:F4} | {r.LoadAtStart:F1} |");
        double off = runs.Where(r => !r.Grouped).Average(r => r.FitSeconds), on = runs.Where(r => r.Grouped).Average(r => r.FitSeconds);
        double accuracyOff = runs.Where(r => !r.Grouped).Average(r => r.Accuracy), accuracyOn = runs.Where(r => r.Grouped).Average(r => r.Accuracy);
        lines.Add("");
        lines.Add($"Grouped by length the fine-tune takes {on / off:F2}x the time ({on:F0} s against {off:F0} s, means of two runs); test accuracy moves by " +
            $"{accuracyOn - accuracyOff:+0.0000;-0.0000} ({Math.Abs(accuracyOn - accuracyOff) * (SentimentData.All().Length - rows):F0} of the {SentimentData.All().Length - rows} test rows). " +
            $"Both settings are deterministic here, so their repeated runs score alike: the accuracy difference is that of one seed's order, and " +
            $"whether grouping helps or hurts accuracy on average would need runs over several seeds. {Machine.Note()}");
        return string.Join('\n', lines);
    }

    /// <summary>The child side: the fine-tune on 2 ranks, with or without grouping by length.</summary>
    public static Result Measure(bool grouped)
    {
        double load = File.Exists("/proc/loadavg") ? double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) : double.NaN;
        var mlContext = new MLContext(seed: 0);
        var split = Split(mlContext);
        var options = new ZeroTextClassificationOptions
        {
            CheckpointPath = MiniLm.Directory(), Sentence1ColumnName = "Text", WorldSize = Ranks, BatchSize = MicroBatch, MaxEpoch = Epochs,
            LearningRate = LearningRate, MaxSequenceLength = MaxSequenceLength, GroupByLength = grouped,
            DeepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Fp32, StepsPerPrint = 25 },
        };
        var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(mlContext.Zero().TextClassification(options));
        var watch = Stopwatch.StartNew();
        var model = pipeline.Fit(split.TrainSet);
        double seconds = watch.Elapsed.TotalSeconds;
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(split.TestSet));
        return new Result(grouped, metrics.MicroAccuracy, seconds, load);
    }

    private static DataOperationsCatalog.TrainTestData Split(MLContext mlContext) =>
        mlContext.Data.TrainTestSplit(mlContext.Data.LoadFromEnumerable(SentimentData.All()), testFraction: 0.2, seed: 0);

    // The training rows' token counts in the order the trainer reads them, as it counts them.
    private static (int[] Lengths, int Rows) TrainingLengths()
    {
        var checkpoint = BertCheckpoint.Open(MiniLm.Directory());
        var encoder = new BertTextEncoder(File.ReadAllBytes(checkpoint.VocabPath), checkpoint.LowerCase, MaxSequenceLength);
        var texts = Split(new MLContext(seed: 0)).TrainSet.GetColumn<string>("Text").ToList();
        return (texts.Select(text => encoder.Encode(text, null).Ids.Length).ToArray(), texts.Count);
    }

    // The padding share and the tokens (real and padding) of both epochs, for the plan the trainer builds with seed 0.
    private static (double Share, long Tokens) Padding(int[] lengths, int ranks, int micro, LengthGroupedOrder? grouping)
    {
        long all = 0, real = 0;
        for (int epoch = 0; epoch < Epochs; epoch++)
        {
            var rankRows = Enumerable.Range(0, ranks).Select(rank => new ShardPlan(lengths.Length, ranks, rank, micro, 0, grouping).RowsForEpoch(epoch));
            var tokens = LengthGroupedOrder.PaddedTokens(lengths, rankRows, micro);
            all += tokens.All;
            real += tokens.Real;
        }
        return ((double)(all - real) / all, all);
    }
}
