using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.ML.Data;
using Microsoft.ML.Zero.SampleData;

namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>
/// The text classifier's default schedule (warm-up over 6% of the steps, then linear decay to 0) against a constant
/// rate: the UCI sentiment fine-tune of <see cref="FineTuneBenchmark"/> (same split, seed, batch, rate and epochs) on
/// 2 in-process ranks in fp32, once with each schedule.
/// </summary>
internal static class ScheduleBenchmark
{
    public const string Name = "schedule";

    private const int Ranks = 2, GlobalBatch = 32, Epochs = 2, MaxSequenceLength = 64;
    private const double LearningRate = 1e-4;

    public sealed record Result(string Schedule, string Logged, double Accuracy, double LogLoss, double[] EpochLosses, double FitSeconds, long Rows, long TestRows);

    public static string Run()
    {
        var runs = new[] { ZeroSchedulerType.Linear, ZeroSchedulerType.Constant }.Select(schedule =>
        {
            Console.WriteLine($"  fine-tune with the {schedule} schedule");
            return ChildProcess.Run<Result>(Name, schedule.ToString());
        }).ToList();

        var lines = new List<string>
        {
            "## Learning-rate schedule: the default warm-up and linear decay against a constant rate",
            "",
            $"all-MiniLM-L6-v2 fine-tuned on the UCI Sentiment Labelled Sentences, `TrainTestSplit(0.2, seed: 0)`: {runs[0].Rows} training rows, {Epochs} epochs, " +
            $"{Ranks} in-process ranks x micro-batch {GlobalBatch / Ranks}, AdamW lr {LearningRate:0e0}, max sequence length {MaxSequenceLength}, fp32, seed 0 for both runs " +
            "(the same initial classifier head, data order and dropout): the settings of the fine-tune section, whose 2 x 16 row is the `Constant` run here. " +
            "The runs differ only in `LearningRateSchedulerType`: `Linear`, the text classifier's default (`WarmupRatio` 0.06), or `Constant`. " +
            $"One run each, in a fresh process; test accuracy and log-loss from ML.NET's `Evaluate` on the {runs[0].TestRows} test rows.",
            "",
            "| schedule (as logged) | test accuracy | test log-loss | mean training loss per epoch | Fit wall time |",
            "|---|---|---|---|---|",
        };
        foreach (var r in runs)
            lines.Add($"| {r.Schedule}: {r.Logged} | {r.Accuracy:F4} | {r.LogLoss:F4} | {string.Join(", ", r.EpochLosses.Select(l => l.ToString("F4", CultureInfo.InvariantCulture)))} | {r.FitSeconds:F0} s |");
        lines.Add("");
        lines.Add($"With the default schedule test accuracy moves by {runs[0].Accuracy - runs[1].Accuracy:+0.0000;-0.0000} " +
            $"({Math.Round((runs[0].Accuracy - runs[1].Accuracy) * runs[0].TestRows):+0;-0} of {runs[0].TestRows} test rows) and test log-loss by " +
            $"{runs[0].LogLoss - runs[1].LogLoss:+0.0000;-0.0000}, from one run of one seed each. {Machine.Note()}");
        return string.Join('\n', lines);
    }

    /// <summary>The child side: one fine-tune with <paramref name="schedule"/>.</summary>
    public static Result Measure(ZeroSchedulerType schedule)
    {
        var mlContext = new MLContext(seed: 0);
        var logged = new List<string>();
        mlContext.Log += (_, e) =>
        {
            if (e.Source.StartsWith(nameof(ZeroTextClassificationTrainer), StringComparison.Ordinal))
                lock (logged)
                    logged.Add(e.RawMessage);
        };
        var split = mlContext.Data.TrainTestSplit(mlContext.Data.LoadFromEnumerable(SentimentData.All()), testFraction: 0.2, seed: 0);
        var options = new ZeroTextClassificationOptions
        {
            CheckpointPath = MiniLm.Directory(), Sentence1ColumnName = "Text", WorldSize = Ranks, BatchSize = GlobalBatch / Ranks,
            MaxEpoch = Epochs, LearningRate = LearningRate, MaxSequenceLength = MaxSequenceLength, LearningRateSchedulerType = schedule,
            DeepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Fp32, StepsPerPrint = 25 },
        };
        var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(mlContext.Zero().TextClassification(options));
        var watch = Stopwatch.StartNew();
        var model = pipeline.Fit(split.TrainSet);
        double seconds = watch.Elapsed.TotalSeconds;
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(split.TestSet));

        // "... optimizer steps per epoch, learning rate with linear decay after 6% warm-up (8 of 152 steps)." or, constant, "AdamW lr 0.0001".
        string described = logged.Select(l => Regex.Match(l, @"learning rate with (.+)\.$")).FirstOrDefault(m => m.Success)?.Groups[1].Value
            ?? $"constant lr {LearningRate:0e0}";
        var epochLosses = logged.Select(l => Regex.Match(l, @"^Epoch \d+/\d+: mean training loss (\d+\.\d+)")).Where(m => m.Success)
            .Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToArray();
        long rows = split.TrainSet.GetColumn<string>("Text").LongCount(), testRows = split.TestSet.GetColumn<string>("Text").LongCount();
        return new Result(schedule.ToString(), described, metrics.MicroAccuracy, metrics.LogLoss, epochLosses, seconds, rows, testRows);
    }
}
