using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Microsoft.ML.Zero.SampleData;

namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>
/// The per-step data path in BenchmarkDotNet: WordPiece-encoding a sentence, and collating a batch of 16 encoded
/// sentences into padded tensors, the work done on the training thread before every micro-batch's forward pass.
/// </summary>
[MemoryDiagnoser]
public class DataPathBenchmarks
{
    private SentimentBatch _data = null!;
    private string _sentence = "";

    [GlobalSetup]
    public void Setup()
    {
        _data = SentimentBatch.Load(16, 64);
        _sentence = SentimentData.All()[0].Text;
    }

    [Benchmark]
    public int EncodeSentence() => _data.Encoder.Encode(_sentence, null).Ids.Length;

    [Benchmark]
    public long CollateBatchOf16()
    {
        var batch = _data.Collate();
        long tokens = batch.InputIds.numel();
        batch.InputIds.Dispose();
        batch.TokenTypeIds.Dispose();
        batch.AttentionMask.Dispose();
        return tokens;
    }
}

internal static class MicroBenchmarks
{
    public const string Name = "micro";

    public static string Run()
    {
        // In-process: no generated project to build, and the natives this build made loadable are used as they are.
        var config = ManualConfig.CreateMinimumViable()
            .AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance))
            .WithOptions(ConfigOptions.DisableLogFile);
        var summary = BenchmarkRunner.Run<DataPathBenchmarks>(config);
        var lines = new List<string>
        {
            "## Per-step data path (BenchmarkDotNet)",
            "",
            "Work on the training thread before each micro-batch's forward pass: WordPiece-encoding one sentence of the sentiment data " +
            "(done once per row per epoch), and collating 16 encoded sentences into padded id, token-type and mask tensors (once per " +
            "micro-batch). BenchmarkDotNet ShortRun, in-process.",
            "",
            "| benchmark | mean | error | allocated |",
            "|---|---|---|---|",
        };
        foreach (var report in summary.Reports)
        {
            var stats = report.ResultStatistics;
            string allocated = report.GcStats.GetBytesAllocatedPerOperation(report.BenchmarkCase) is { } bytes ? $"{bytes:N0} B" : "";
            lines.Add(stats is null
                ? $"| {report.BenchmarkCase.Descriptor.WorkloadMethod.Name} | failed | | |"
                : $"| {report.BenchmarkCase.Descriptor.WorkloadMethod.Name} | {stats.Mean / 1000:F1} µs | ±{stats.StandardError / 1000:F2} µs | {allocated} |");
        }
        lines.Add("");
        lines.Add($"Against a MiniLM step of about a second, both are far below 1%. {Machine.Note()}");
        return string.Join('\n', lines);
    }
}
