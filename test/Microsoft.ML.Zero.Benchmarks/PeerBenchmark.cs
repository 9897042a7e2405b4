using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Tensors;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>
/// The engine against PyTorch DDP (gloo) on the same workload, in one run: a MiniLM-shaped BERT classifier (random
/// weights), random token ids, 16 rows x 64 tokens per rank, AdamW, 1 and 2 ranks, fp32 and (where the CPU computes
/// it natively) bf16. Also the achieved GFLOP/s against the fp32 matmul rate measured in the same run.
/// </summary>
internal static class PeerBenchmark
{
    public const string Name = "peer";
    private const int Rows = 16, Tokens = 64, Steps = 8, Warmup = 2;
    private const string Python = "/usr/bin/python3";
    private const string RowsHeader = "| CPU | measured | ranks | precision | ours: step time | ours: tokens/s | PyTorch DDP: tokens/s | ours / PyTorch | ours: GFLOP/s | matmul GFLOP/s | of the matmul rate |";
    private const string BreakdownHeader = "| CPU | ranks | precision | forward | backward | all-reduce | optimizer step |";

    // Forward and backward per token: 6 x the 10.6 M weights of the encoder's matrices (2 flops a multiply-add, backward
    // twice forward), plus attention's QK^T and AV (4 x tokens x hidden a layer forward, 3x with backward).
    private static readonly double FlopsPerToken = 6.0 * 6 * (4 * 384 * 384 + 2 * 384 * 1536) + 3.0 * 6 * 4 * Tokens * 384;

    private sealed record PeerRun([property: JsonPropertyName("torch")] string Torch, [property: JsonPropertyName("threads_per_rank")] int ThreadsPerRank,
        [property: JsonPropertyName("seconds")] double[] Seconds);

    public static string Run()
    {
        var lines = new List<string>
        {
            "## Against PyTorch DDP: the same BERT steps, side by side",
            "",
        };
        bool hasTorch = RunsTorch();
        var precisions = new List<ZeroPrecision> { ZeroPrecision.Fp32 };
        var bf16 = Training.SixteenBitSpeed.OfThisCpu(ZeroPrecision.Bf16);
        if (bf16.Native)
            precisions.Add(ZeroPrecision.Bf16);
        double fp32Rate = MatmulGflops(ScalarType.Float32), bf16Rate = MatmulGflops(ScalarType.BFloat16);

        lines.Add($"A MiniLM-shaped BERT classifier (6 layers, hidden 384, 12 heads, intermediate 1536, vocab 30522; random weights), random token ids, " +
            $"{Rows} rows x {Tokens} tokens per rank, AdamW, hidden dropout 0.1, one optimizer step per batch; {Warmup} warm-up steps, then rank 0's " +
            $"median over {Steps} steps. Each rank gets cores / ranks threads. Ours: in-process ranks, the engine's flat AdamW. PyTorch: " +
            "Debian's python3-torch with OpenBLAS, one process per rank, `DistributedDataParallel` over gloo, bf16 through `torch.autocast`. " +
            $"Tokens/s counts ranks x {Rows} x {Tokens} per step. GFLOP/s counts {FlopsPerToken / 1e6:F1} MFLOP per token (forward and backward of " +
            "the encoder's matrices and attention); the matmul rate is TorchSharp's 1024 x 1024 matmul on all cores in the same run, in the row's " +
            "precision. Precisions: fp32, and bf16 only where the CPU computes it natively. Rows are kept per CPU from each machine's last run of this " +
            "section; a CPU named with \"libtorch limited by\" ran with oneDNN, ATen, MKL and OpenBLAS held to AVX2, a stand-in for an AVX2-only " +
            "CPU of the same cores, not a measurement of one.");
        lines.Add("");
        if (!hasTorch)
            lines.Add($"PyTorch is not installed here (`{Python} -c \"import torch\"` failed): `apt-get install -y python3-torch libopenblas0-pthread` adds it; " +
                "without OpenBLAS Debian's torch multiplies with the reference BLAS (about 3 GFLOP/s).");
        var rows = new List<string>();
        var breakdowns = new List<string>();
        string? torchVersion = null;
        foreach (var precision in precisions)
        {
            foreach (int ranks in new[] { 1, 2 })
            {
                Console.WriteLine($"  {ranks} rank(s), {precision}: engine");
                var ours = MiniLmShapedSteps(ranks, precision);
                var oursSteps = new Samples(ours.Seconds);
                double oursTokens = ranks * Rows * Tokens / oursSteps.Median;
                string peerTokens = "not installed", ratio = "";
                if (hasTorch)
                {
                    Console.WriteLine($"  {ranks} rank(s), {precision}: PyTorch DDP");
                    var peer = RunPeer(ranks, precision);
                    torchVersion = peer.Torch;
                    double tokens = ranks * Rows * Tokens / new Samples(peer.Seconds).Median;
                    (peerTokens, ratio) = ($"{tokens:N0}", $"**{oursTokens / tokens:F2}x**");
                }
                double gflops = oursTokens * FlopsPerToken / 1e9, rate = precision == ZeroPrecision.Bf16 ? bf16Rate : fp32Rate;
                rows.Add($"| {Machine.Cpu} | {DateTime.UtcNow:yyyy-MM-dd} | {ranks} | {precision} | {oursSteps.Milliseconds()} | {oursTokens:N0} | {peerTokens} | {ratio} | " +
                    $"{gflops:F0} | {rate:F0} | {gflops / rate:P0} |");
                breakdowns.Add($"| {Machine.Cpu} | {ranks} | {precision} | {ours.ForwardMs:F0} ms | {ours.BackwardMs:F0} ms | {ours.AllReduceMs:F0} ms | {ours.OptimizerStepMs:F0} ms |");
            }
        }
        // One set of rows per CPU: this one's replace its rows of an earlier run, the other CPUs' stay.
        IEnumerable<string> Keep(string header, List<string> fresh) =>
            ReportFile.TableRows(Name, header).Where(r => !r.StartsWith($"| {Machine.Cpu} |", StringComparison.Ordinal)).Concat(fresh);
        lines.Add(RowsHeader);
        lines.Add("|---|---|---|---|---|---|---|---|---|---|---|");
        lines.AddRange(Keep(RowsHeader, rows));
        lines.Add("");
        lines.Add("Goals: at least 1.2x PyTorch DDP's tokens/s at equal ranks and precision, and at least 75% of the matmul rate in fp32. " +
            "Where the time of our steps goes (rank 0, mean per step, wall_clock_breakdown; with 2 ranks the all-reduce includes waiting for the other rank):");
        lines.Add("");
        lines.Add(BreakdownHeader);
        lines.Add("|---|---|---|---|---|---|---|");
        lines.AddRange(Keep(BreakdownHeader, breakdowns));
        lines.Add("");
        lines.Add($"{(torchVersion is null ? "" : $"PyTorch {torchVersion}. ")}Here Auto logs `{Training.PrecisionChoice.Resolve(ZeroPrecision.Auto).Message}` {Machine.Note()}");
        return string.Join('\n', lines);
    }

    /// <summary>The engine's side of the workload, in a fresh process.</summary>
    public static RandomBertSteps.Times MiniLmShapedSteps(int ranks, ZeroPrecision precision, int warmup = Warmup, int steps = Steps) =>
        RandomBertSteps.InChild("minilm", ranks, Rows, Tokens, warmup, steps, precision);

    private static bool RunsTorch()
    {
        if (!File.Exists(Python))
            return false;
        using var process = Process.Start(new ProcessStartInfo(Python, "-c \"import torch\"") { RedirectStandardError = true })!;
        process.WaitForExit();
        return process.ExitCode == 0;
    }

    private static PeerRun RunPeer(int ranks, ZeroPrecision precision)
    {
        string script = Path.Combine(AppContext.BaseDirectory, "peer", "ddp_bert.py");
        var start = new ProcessStartInfo(Python) { RedirectStandardOutput = true };
        foreach (var argument in new[] { script, "--ranks", ranks.ToString(), "--precision", precision.ToString().ToLowerInvariant(),
                     "--rows", Rows.ToString(), "--tokens", Tokens.ToString(), "--steps", Steps.ToString() })
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        string? last = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
        if (process.ExitCode != 0 || last is null)
            throw new InvalidOperationException($"{script} --ranks {ranks} --precision {precision} failed with exit code {process.ExitCode}.");
        return JsonSerializer.Deserialize<PeerRun>(last)!;
    }

    /// <summary>TorchSharp's 1024 x 1024 matmul rate in <paramref name="type"/> on all cores, GFLOP/s (median of a few).</summary>
    public static double MatmulGflops(ScalarType type)
    {
        TorchRuntime.EnsureLoaded();
        const int N = 1024;
        using var scope = NewDisposeScope();
        var a = randn(N, N).to(type);
        var b = randn(N, N).to(type);
        var samples = Samples.Measure(() => a.matmul(b).Dispose(), repeats: type == ScalarType.Float32 ? 20 : 3, warmup: 1);
        return 2.0 * N * N * N / samples.Median / 1e9;
    }
}
