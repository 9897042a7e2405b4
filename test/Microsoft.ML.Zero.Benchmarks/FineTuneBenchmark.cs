using System.Diagnostics;
using Microsoft.ML.Data;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.SampleData;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>
/// Fine-tunes all-MiniLM-L6-v2 on the UCI sentiment sentences (80/20 split, seed 0) with the same global batch on 1 and
/// 2 in-process ranks, and compares the test accuracy with ML.NET's FeaturizeText + SdcaMaximumEntropy.
/// </summary>
internal static class FineTuneBenchmark
{
    public const string Name = "finetune";

    private const int GlobalBatch = 32, Epochs = 2, MaxSequenceLength = 64;
    private const double LearningRate = 1e-4;

    public sealed record Result(int Ranks, int MicroBatch, string Precision, double Accuracy, double FitSeconds, int Steps, long Rows, long Tokens, long PeakBytes);

    public static string Run()
    {
        var baseline = BaselineAccuracy();
        var runs = new[] { 1, 2 }.Select(ranks =>
        {
            Console.WriteLine($"  fine-tune on {ranks} rank(s)");
            return ChildProcess.Run<Result>(Name, ranks.ToString(), nameof(ZeroPrecision.Fp32));
        }).ToList();

        var lines = new List<string>
        {
            "## BERT fine-tune: accuracy, time, throughput, memory",
            "",
            $"all-MiniLM-L6-v2 (6 layers, hidden 384, 22.7 M parameters) fine-tuned as a sentiment classifier on the UCI Sentiment Labelled " +
            $"Sentences, `TrainTestSplit(0.2, seed: 0)`: {runs[0].Rows} training rows, {Epochs} epochs, global batch {GlobalBatch}, AdamW lr {LearningRate:0e0} (constant), " +
            $"max sequence length {MaxSequenceLength}, fp32, in-process ranks. One run per row, each in a fresh process; " +
            "tokens/s counts the real (unpadded) tokens of training rows per second of `Fit`; peak memory is the process's peak RSS.",
            "",
            "| ranks x micro-batch | test accuracy | Fit wall time | rows/s | tokens/s | peak RSS |",
            "|---|---|---|---|---|---|",
        };
        foreach (var r in runs)
            lines.Add($"| {r.Ranks} x {r.MicroBatch} | {r.Accuracy:F4} | {r.FitSeconds:F0} s | {r.Rows * Epochs / r.FitSeconds:F1} | {r.Tokens / r.FitSeconds:F0} | {r.PeakBytes / (1024.0 * 1024 * 1024):F2} GiB |");
        lines.Add($"| ML.NET FeaturizeText + SdcaMaximumEntropy (same split) | {baseline:F4} | | | | |");
        lines.Add("");
        lines.Add($"2 ranks take {runs[1].FitSeconds / runs[0].FitSeconds:F2}x the time of 1 rank. Both runs use all of this machine's cores: " +
            $"1 rank with every core, or 2 ranks with half each. {Machine.Note()}");
        return string.Join('\n', lines);
    }

    /// <summary>The header of the precision table keyed by CPU, whose rows from other machines each run keeps.</summary>
    private const string ByCpuHeader = "| CPU | measured | fp32 matmul | bf16 matmul | bf16 / fp32 matmul | MiniLM-shaped step, fp32 | MiniLM-shaped step, bf16 | bf16 / fp32 step | Auto picks |";

    /// <summary>
    /// Precision on this CPU: matmul rates, the MiniLM-shaped step in fp32 and bf16, and what Auto picks (one row of a
    /// table keyed by CPU that keeps the other machines' rows); then the fine-tune in fp32, bf16 and Auto, and a
    /// BERT-base-sized step, in bf16 only where the CPU computes it natively (elsewhere a bf16 fine-tune takes ~45 min).
    /// </summary>
    public static string RunPrecision()
    {
        var bf16 = Training.SixteenBitSpeed.OfThisCpu(ZeroPrecision.Bf16);
        var auto = Training.PrecisionChoice.Resolve(ZeroPrecision.Auto);
        double fp32Rate = PeerBenchmark.MatmulGflops(TorchSharp.torch.ScalarType.Float32), bf16Rate = PeerBenchmark.MatmulGflops(TorchSharp.torch.ScalarType.BFloat16);
        // Emulated bf16 takes minutes a step: there one step after one warm-up.
        var steps = new[] { ZeroPrecision.Fp32, ZeroPrecision.Bf16 }.Select(precision =>
        {
            Console.WriteLine($"  MiniLM-shaped steps in {precision}");
            return new Samples((precision == ZeroPrecision.Bf16 && !bf16.Native
                ? PeerBenchmark.MiniLmShapedSteps(2, precision, warmup: 1, steps: 1) : PeerBenchmark.MiniLmShapedSteps(2, precision)).Seconds);
        }).ToList();
        string row = $"| {Machine.Cpu} | {DateTime.UtcNow:yyyy-MM-dd} | {fp32Rate:F0} GFLOP/s | {bf16Rate:F1} GFLOP/s | {bf16Rate / fp32Rate:F3}x | " +
            $"{steps[0].Median:F2} s | {steps[1].Median:F2} s | {steps[0].Median / steps[1].Median:F2}x | {auto.Precision} |";
        var otherRows = ReportFile.TableRows("precision", ByCpuHeader).Where(r => !r.StartsWith($"| {Machine.Cpu} |", StringComparison.Ordinal));

        var lines = new List<string>
        {
            "## Precision: fp32, bf16 and Auto, by CPU",
            "",
            "libtorch computes bf16 fast only with AVX512_BF16 or AMX; elsewhere its bf16 matmuls are emulated, about 100x slower than fp32. " +
            "`ZeroPrecision.Auto` (`\"bf16\": { \"enabled\": \"auto\" }`) times a 256 x 256 matmul in both types once per process and trains in bf16 " +
            "only where bf16 is at least as fast. One row per CPU, kept from each machine's last run of this section: matmuls are 1024 x 1024 on all cores " +
            "(TorchSharp); the step is one optimizer step of a MiniLM-shaped BERT classifier (random weights, random ids) on 2 in-process ranks of " +
            "16 rows x 64 tokens with AdamW, rank 0's median of 8 steps after 2 warm-up steps (where bf16 is emulated, its one step after one). A CPU named with \"libtorch limited by\" ran with " +
            "oneDNN, ATen and MKL held to AVX2: a stand-in for an AVX2-only CPU, not a measurement of one.",
            "",
            ByCpuHeader,
            "|---|---|---|---|---|---|---|---|---|",
        };
        lines.AddRange(otherRows.Append(row));
        lines.Add("");
        lines.Add($"Here Auto logs: `{auto.Message}`");

        var precisions = bf16.Native ? new[] { ZeroPrecision.Fp32, ZeroPrecision.Bf16, ZeroPrecision.Auto } : new[] { ZeroPrecision.Fp32, ZeroPrecision.Auto };
        var runs = precisions.Select(precision =>
        {
            Console.WriteLine($"  fine-tune in {precision}");
            return ChildProcess.Run<Result>(Name, "2", precision.ToString());
        }).ToList();
        lines.Add("");
        lines.Add($"The fine-tune of the first section on 2 ranks x 16 in each precision on this CPU (bf16: bf16 forward and backward, fp32 master weights, " +
            "loss and all-reduce; Auto: what it picked). Step time is Fit's wall time over its optimizer steps, one run each in a fresh process." +
            (bf16.Native ? "" : $" No bf16 fine-tune here: at the bf16 step time above (64 tokens a row; the sentences are shorter) its {runs[0].Steps} steps would take up to about {runs[0].Steps * steps[1].Median / 60:F0} min."));
        lines.Add("");
        lines.Add("| precision | test accuracy | Fit wall time | optimizer steps | mean step time | peak RSS |");
        lines.Add("|---|---|---|---|---|---|");
        foreach (var r in runs)
            lines.Add($"| {r.Precision} | {r.Accuracy:F4} | {r.FitSeconds:F0} s | {r.Steps} | {r.FitSeconds / r.Steps:F2} s | {r.PeakBytes / (1024.0 * 1024 * 1024):F2} GiB |");
        lines.Add("");
        if (bf16.Native)
            lines.Add($"bf16 steps are {runs[0].FitSeconds / runs[1].FitSeconds:F2}x as fast as fp32; accuracy moves by {runs[1].Accuracy - runs[0].Accuracy:+0.0000;-0.0000}.");
        lines.Add($"Auto's fine-tune took {runs[^1].FitSeconds / runs.Take(runs.Count - 1).Min(r => r.FitSeconds):F2}x the time of the faster explicit precision here (goal: at most 1.5x).");
        if (!bf16.Native)
        {
            lines.Add("");
            lines.Add($"The BERT-base-sized comparison runs only where bf16 is native. {Machine.Note()}");
            return string.Join('\n', lines);
        }

        // MiniLM's matrices are small; a BERT-base-sized encoder shows the precision where matrix products dominate.
        var baseRuns = new[] { ZeroPrecision.Fp32, ZeroPrecision.Bf16 }.Select(precision => (precision, RandomBertSteps.InChild("base", 1, BaseSizedRows, BaseSizedTokens, 1, BaseSizedSteps, precision))).ToList();
        var baseSteps = baseRuns.Select(r => (r.precision, new Samples(r.Item2.Seconds))).ToList();
        lines.Add("");
        lines.Add($"A BERT-base-sized classifier (12 layers, hidden 768, 110 M parameters, random weights), one rank on all cores, {BaseSizedRows} rows x " +
            $"{BaseSizedTokens} tokens, AdamW: step time, median with interquartile range over {BaseSizedSteps} steps, and the mean time per step " +
            "of each part (wall_clock_breakdown; the optimizer step includes unscaling and, in bf16, copying the new fp32 master weights into the bf16 model; " +
            "both step AdamW over the flat fp32 weights in one pass).");
        lines.Add("");
        lines.Add("| precision | step time | forward | backward | all-reduce | optimizer step |");
        lines.Add("|---|---|---|---|---|---|");
        foreach (var ((precision, time), (_, parts)) in baseSteps.Zip(baseRuns))
            lines.Add($"| {precision} | {time.Milliseconds()} | {parts.ForwardMs:F0} ms | {parts.BackwardMs:F0} ms | {parts.AllReduceMs:F0} ms | {parts.OptimizerStepMs:F0} ms |");
        lines.Add("");
        lines.Add($"bf16 steps of the BERT-base-sized model are {baseSteps[0].Item2.Median / baseSteps[1].Item2.Median:F2}x as fast as fp32 (goal: at least 2.5x). {Machine.Note()}");
        return string.Join('\n', lines);
    }

    private const int BaseSizedRows = 8, BaseSizedTokens = 128, BaseSizedSteps = 5;

    /// <summary>The child side: one fine-tune on <paramref name="ranks"/> ranks.</summary>
    public static Result Measure(int ranks, ZeroPrecision precision)
    {
        var mlContext = new MLContext(seed: 0);
        var split = mlContext.Data.TrainTestSplit(mlContext.Data.LoadFromEnumerable(SentimentData.All()), testFraction: 0.2, seed: 0);
        var options = new ZeroTextClassificationOptions
        {
            CheckpointPath = MiniLm.Directory(), Sentence1ColumnName = "Text", WorldSize = ranks, BatchSize = GlobalBatch / ranks,
            MaxEpoch = Epochs, LearningRate = LearningRate, MaxSequenceLength = MaxSequenceLength,
            // The rate these figures were first measured with; the "schedule" section compares the default schedule.
            LearningRateSchedulerType = ZeroSchedulerType.Constant,
            DeepSpeed = new DeepSpeedOptions { Precision = precision, StepsPerPrint = 25 },
        };
        var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(mlContext.Zero().TextClassification(options));
        var watch = Stopwatch.StartNew();
        var model = pipeline.Fit(split.TrainSet);
        double seconds = watch.Elapsed.TotalSeconds;
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(split.TestSet));

        var checkpoint = BertCheckpoint.Open(options.CheckpointPath);
        var encoder = new BertTextEncoder(File.ReadAllBytes(checkpoint.VocabPath), checkpoint.LowerCase, MaxSequenceLength);
        var texts = split.TrainSet.GetColumn<string>("Text").ToList();
        long tokens = texts.Sum(text => (long)encoder.Encode(text, null).Ids.Length) * Epochs;
        int steps = (texts.Count + GlobalBatch - 1) / GlobalBatch * Epochs;
        string used = precision == ZeroPrecision.Auto ? $"Auto ({mlContext.Zero().ResolvePrecision(precision)})" : precision.ToString();
        return new Result(ranks, options.BatchSize, used, metrics.MicroAccuracy, seconds, steps, texts.Count, tokens, ResidentMemory.Peak());
    }

    private static double BaselineAccuracy()
    {
        var mlContext = new MLContext(seed: 0);
        var split = mlContext.Data.TrainTestSplit(mlContext.Data.LoadFromEnumerable(SentimentData.All()), testFraction: 0.2, seed: 0);
        var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label")
            .Append(mlContext.Transforms.Text.FeaturizeText("Features", "Text"))
            .Append(mlContext.MulticlassClassification.Trainers.SdcaMaximumEntropy());
        return mlContext.MulticlassClassification.Evaluate(pipeline.Fit(split.TrainSet).Transform(split.TestSet)).MicroAccuracy;
    }
}
