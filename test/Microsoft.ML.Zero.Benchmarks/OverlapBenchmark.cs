using static TorchSharp.torch;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Distributed.Mpi;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.SampleData;
using Microsoft.ML.Zero.Tensors;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>
/// The MiniLM classifier's step on 2 ranks with the all-reduce after backward, and with buckets overlapping backward,
/// against the same per-rank compute with no communication at all; in-process and under mpirun.
/// </summary>
internal static class OverlapBenchmark
{
    public const string Name = "overlap", Child = "overlap-run";
    private const int RowsPerRank = 16, SequenceLength = 64, Steps = 12;

    public sealed record Result(double[] Seconds);

    public static string Run()
    {
        Samples InProcess(string mode) => new(ChildProcess.Run<Result>(Child, mode).Seconds);
        Samples Mpi(int processes, string mode) => new(ChildProcess.RunUnderMpi<Result>(processes, Child, mode).Seconds);
        var rows = new (string Label, int Ranks, Samples Time)[]
        {
            ("compute alone: 1 rank on half the cores, no all-reduce", 1, InProcess("compute")),
            ("2 in-process ranks, all-reduce after backward", 2, InProcess("off")),
            ("2 in-process ranks, overlapped buckets (overlap_comm)", 2, InProcess("on")),
            ("1 MPI process on all the cores", 1, Mpi(1, "off")),
            ("2 MPI processes, all-reduce after backward", 2, Mpi(2, "off")),
            ("2 MPI processes, overlapped buckets (overlap_comm)", 2, Mpi(2, "on")),
        };
        var lines = new List<string>
        {
            "## Overlapping the all-reduce with backward",
            "",
            $"One optimizer step of the MiniLM classifier (fp32, {RowsPerRank} sentences of up to {SequenceLength} tokens per rank, 25 MiB buckets), " +
            $"{Steps} steps after warm-up, rank 0's step times: median with interquartile range. Each rank gets half of this machine's cores, " +
            "so \"compute alone\" is the floor a rank's step could reach with free communication.",
            "",
            "| run | step time | vs compute alone | rows/s |",
            "|---|---|---|---|",
        };
        foreach (var (label, ranks, time) in rows)
            lines.Add($"| {label} | {time.Milliseconds()} | {time.Median / rows[0].Time.Median:F2}x | {ranks * RowsPerRank / time.Median:F1} |");
        lines.Add("");
        lines.Add($"Scaling on this 2-core machine: 2 MPI processes train {2 * rows[3].Time.Median / rows[4].Time.Median:F2}x the rows per second " +
            "of 1 process using both cores. " +
            $"Overlap on / off: {rows[2].Time.Median / rows[1].Time.Median:F2}x in-process, {rows[5].Time.Median / rows[4].Time.Median:F2}x under MPI. " +
            "This model's gradients are 91 MB; on 2 cores the communication thread competes with backward for the same cores. " +
            Machine.Note());
        return string.Join('\n', lines);
    }

    /// <summary>The child side: "compute" (1 rank, no communication), or 2 ranks with overlap "on" or "off" (in-process or MPI).</summary>
    public static Result Measure(string mode)
    {
        var settings = EngineSettings.Fp32(new OptimizerSettings(ZeroOptimizer.AdamW, 5e-5, 0.9, 0.999, 1e-8, 0.01, 0)) with { OverlapCommunication = mode == "on" };

        Samples RankLoop(ICommunicator communicator)
        {
            var data = SentimentBatch.Load(RowsPerRank, SequenceLength, skip: communicator.Rank * RowsPerRank);
            var labels = tensor(data.Labels);
            using var model = new BertClassifier(data.Checkpoint.Config, 2, new Generator((ulong)communicator.Rank));
            data.Checkpoint.LoadInto(model.Encoder);
            model.train();
            using var engine = new ZeroEngine(model, communicator, settings);
            void Step() => engine.Step(new Func<Tensor?>[] { () => nn.functional.cross_entropy(
                model.forward(data.Collate()), labels, reduction: nn.Reduction.Sum) }, RowsPerRank * communicator.WorldSize);
            return Samples.Measure(Step, Steps, warmup: 2);
        }

        if (MpiLaunchEnvironment.Detect() is { } launch)
        {
            var communicator = MpiCommunicator.World(launch, TimeSpan.FromMinutes(5));
            using (TorchRuntime.ShareCoresAmongRanks(launch.LocalSize))
                return new Result(RankLoop(communicator).Seconds);
        }
        int ranks = mode == "compute" ? 1 : 2;
        var samples = InProcessLauncher.Run(ranks, TimeSpan.FromMinutes(5), communicator =>
        {
            TorchRuntime.UseCoreShare(2); // half the cores in every mode: the per-rank compute is the same
            return RankLoop(communicator);
        });
        return new Result(samples[0].Seconds);
    }
}
