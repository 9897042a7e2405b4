using static TorchSharp.torch;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.Tensors;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>
/// Optimizer steps of a BERT classifier with random weights on random token ids, through the engine on in-process
/// ranks: rank 0's step times and where they went (wall_clock_breakdown). Run in a child process (<see cref="Child"/>).
/// </summary>
internal static class RandomBertSteps
{
    public const string Child = "bert-steps";

    public sealed record Times(double[] Seconds, double ForwardMs, double BackwardMs, double AllReduceMs, double OptimizerStepMs);

    /// <summary>Shapes by name: all-MiniLM-L6-v2's and BERT-base's.</summary>
    public static readonly IReadOnlyDictionary<string, BertConfig> Shapes = new Dictionary<string, BertConfig>
    {
        ["minilm"] = new(30522, 384, 6, 12, 1536, "gelu", 0.1, 0.1, 512, 2, 1e-12, 0),
        ["base"] = new(30522, 768, 12, 12, 3072, "gelu", 0.1, 0.1, 512, 2, 1e-12, 0),
    };

    /// <summary>Runs <see cref="Measure"/> in a fresh process.</summary>
    public static Times InChild(string shape, int ranks, int rows, int tokens, int warmup, int steps, ZeroPrecision precision) =>
        ChildProcess.Run<Times>(Child, shape, ranks.ToString(), rows.ToString(), tokens.ToString(), warmup.ToString(), steps.ToString(), precision.ToString());

    /// <summary>The child side, from <see cref="InChild"/>'s arguments.</summary>
    public static Times Measure(string[] arguments) => Measure(arguments[0], int.Parse(arguments[1]), int.Parse(arguments[2]), int.Parse(arguments[3]),
        int.Parse(arguments[4]), int.Parse(arguments[5]), Enum.Parse<ZeroPrecision>(arguments[6]));

    /// <summary>
    /// <paramref name="steps"/> timed steps after <paramref name="warmup"/>, each of <paramref name="rows"/> x
    /// <paramref name="tokens"/> per rank; each rank gets cores / ranks threads and the ranks start each step together.
    /// </summary>
    public static Times Measure(string shape, int ranks, int rows, int tokens, int warmup, int steps, ZeroPrecision precision)
    {
        TorchRuntime.EnsureLoaded();
        var config = Shapes[shape];
        using var cores = TorchRuntime.ShareCoresAmongRanks(ranks);
        var runs = Distributed.InProcessLauncher.Run(ranks, TimeSpan.FromMinutes(30), communicator =>
        {
            TorchRuntime.UseCoreShare(ranks);
            manual_seed(0);
            using var model = new BertClassifier(config, 2, new Generator(0));
            model.train();
            var settings = Training.EngineSettings.Fp32(new Training.OptimizerSettings(ZeroOptimizer.AdamW, 5e-5, 0.9, 0.999, 1e-8, 0.01, 0)) with { Precision = precision };
            using var engine = new ZeroEngine(model, communicator, settings, new Training.BatchSizes(rows * ranks, rows, 1));
            var ids = randint(1, config.VocabSize, new long[] { rows, tokens }, generator: new Generator(1 + (ulong)communicator.Rank));
            var batch = new BertBatch(ids, zeros_like(ids), ones(rows, tokens, dtype: ScalarType.Bool));
            var labels = tensor(Enumerable.Range(0, rows).Select(i => (long)(i % 2)).ToArray());
            void Step()
            {
                using var scope = NewDisposeScope();
                engine.Step(new Func<Tensor?>[] { () => nn.functional.cross_entropy(model.forward(batch).to(ScalarType.Float32), labels, reduction: nn.Reduction.Sum) },
                    rows * ranks);
            }
            for (int i = 0; i < warmup; i++)
                Step();
            engine.Timings.Reset();
            var samples = Samples.Measure(Step, steps, warmup: 0, before: communicator.Barrier);
            var t = engine.Timings;
            double Ms(TimeSpan total) => total.TotalMilliseconds / steps;
            return new Times(samples.Seconds, Ms(t.Forward), Ms(t.Backward), Ms(t.AllReduce), Ms(t.OptimizerStep));
        });
        return runs[0];
    }
}
