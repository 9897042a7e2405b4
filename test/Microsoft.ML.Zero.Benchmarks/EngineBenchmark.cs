using TorchSharp;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.Models;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.SampleData;
using Microsoft.ML.Zero.Tensors;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>
/// The engine's cost on one rank: its step against a bare TorchSharp loop (forward, backward, AdamW step) on the same
/// MiniLM classifier and batch; and memory: peak bytes per parameter, and resident memory over a long run.
/// </summary>
internal static class EngineBenchmark
{
    public const string OverheadName = "overhead", MemoryName = "memory", MemoryChild = "memory-run", LeakChild = "memory-long";
    private const int BatchRows = 16, SequenceLength = 64;

    public sealed record MemoryResult(string Precision, string Accumulation, long Parameters, long BaselineBytes, long PeakBytes, long StateBytes, long WorkingBytes);

    /// <summary>Resident memory and the .NET heap after a full collection, every Interval steps of a long run.</summary>
    public sealed record LeakResult(int Interval, long[] Resident, long[] Managed);

    public static string RunOverhead()
    {
        var (bare, engine, bareAllocations, engineAllocations) = MeasureOverhead();
        return string.Join('\n',
            "## Engine overhead on one rank",
            "",
            $"One optimizer step of the MiniLM classifier (fp32, {BatchRows} sentences of the sentiment data, up to {SequenceLength} tokens) on one rank: " +
            "a bare TorchSharp loop (forward, cross-entropy, backward, TorchSharp's AdamW step) against the engine (flat gradient buffer, " +
            "all-reduce of one rank, loss bookkeeping, and its AdamW: the same arithmetic over the flat weights in one pass). " +
            "Alternating rounds on the same thread; median with interquartile range.",
            "",
            "| loop | step time |",
            "|---|---|",
            $"| bare TorchSharp | {bare.Milliseconds()} |",
            $"| Microsoft.ML.Zero engine | {engine.Milliseconds()} |",
            "",
            $"Engine / bare (medians): **{engine.Median / bare.Median:F3}x** (goal: at most 1.03x). Step times on this shared machine spread by " +
            $"about ±10%, so read a ratio near 1 as \"no measurable overhead\".",
            "",
            "Allocations per step (the mean of 8 steps after the timed ones): TorchSharp tensor handles created on the step's thread " +
            "(each one a native tensor or view, freed by the step's dispose scope) and managed bytes allocated.",
            "",
            "| loop | tensors created per step | managed bytes per step |",
            "|---|---|---|",
            $"| bare TorchSharp | {bareAllocations.Tensors:F0} | {bareAllocations.ManagedBytes:N0} |",
            $"| Microsoft.ML.Zero engine | {engineAllocations.Tensors:F0} | {engineAllocations.ManagedBytes:N0} |",
            "",
            $"Per step the engine creates {engineAllocations.Tensors:F0} tensor handles and {engineAllocations.ManagedBytes:N0} managed bytes, the bare " +
            $"loop {bareAllocations.Tensors:F0} and {bareAllocations.ManagedBytes:N0}. Each step's dispose scope frees its handles: the test " +
            $"StepsLeaveNoTensorsBehind checks that the live tensor count stays flat over 30 steps. {Machine.Note()}");
    }

    private sealed record Allocations(double Tensors, double ManagedBytes);

    // Tensor handles and managed bytes one call of step allocates on this thread, averaged over some calls.
    private static Allocations CountAllocations(Action step, int steps = 8)
    {
        var tensors = DisposeScopeManager.Statistics.TensorStatistics;
        long createdBefore = tensors.CreatedInScopeCount + tensors.CreatedOutsideScopeCount;
        long bytesBefore = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < steps; i++)
            step();
        long created = tensors.CreatedInScopeCount + tensors.CreatedOutsideScopeCount - createdBefore;
        return new Allocations((double)created / steps, (double)(GC.GetAllocatedBytesForCurrentThread() - bytesBefore) / steps);
    }

    private static (Samples Bare, Samples Engine, Allocations BareAllocations, Allocations EngineAllocations) MeasureOverhead()
    {
        var data = SentimentBatch.Load(BatchRows, SequenceLength);
        var checkpoint = data.Checkpoint;
        var bare = new List<double>();
        var engineTimes = new List<double>();
        Allocations? bareAllocations = null, engineAllocations = null;
        InProcessLauncher.Run(1, TimeSpan.FromMinutes(5), communicator =>
        {
            TorchRuntime.UseCoreShare(1);
            BertClassifier Load()
            {
                manual_seed(0);
                var model = new BertClassifier(checkpoint.Config, 2, new Generator(0));
                checkpoint.LoadInto(model.Encoder);
                model.train();
                return model;
            }
            using var bareModel = Load();
            using var engineModel = Load();
            using var optimizer = optim.AdamW(bareModel.parameters(), 5e-5);
            using var engine = new ZeroEngine(engineModel, communicator,
                EngineSettings.Fp32(new OptimizerSettings(ZeroOptimizer.AdamW, 5e-5, 0.9, 0.999, 1e-8, 0.01, 0)));
            Tensor Loss(BertClassifier model, nn.Reduction reduction) =>
                nn.functional.cross_entropy(model.forward(data.Collate()), tensor(data.Labels), reduction: reduction);
            void BareStep()
            {
                using var scope = NewDisposeScope();
                optimizer.zero_grad();
                Loss(bareModel, nn.Reduction.Mean).backward();
                optimizer.step();
            }
            void EngineStep() => engine.Step(new Func<Tensor?>[] { () => Loss(engineModel, nn.Reduction.Sum) }, BatchRows);
            for (int round = 0; round < 5; round++)
            {
                bare.AddRange(Samples.Measure(BareStep, 4, warmup: round == 0 ? 2 : 0).Seconds);
                engineTimes.AddRange(Samples.Measure(EngineStep, 4, warmup: round == 0 ? 2 : 0).Seconds);
            }
            bareAllocations = CountAllocations(BareStep);
            engineAllocations = CountAllocations(EngineStep);
            return true;
        });
        return (new Samples(bare.ToArray()), new Samples(engineTimes.ToArray()), bareAllocations!, engineAllocations!);
    }

    public static string RunMemory()
    {
        var runs = new[] { (ZeroPrecision.Fp32, ZeroPrecision.Fp32), (ZeroPrecision.Bf16, ZeroPrecision.Fp32), (ZeroPrecision.Bf16, ZeroPrecision.Bf16) }
            .Select(p => ChildProcess.Run<MemoryResult>(MemoryChild, p.Item1.ToString(), p.Item2.ToString())).ToList();
        var leak = ChildProcess.Run<LeakResult>(LeakChild);
        var lines = new List<string>
        {
            "## Memory",
            "",
            $"Peak resident memory of one rank training the MiniLM classifier (AdamW, {BatchRows} x {SequenceLength} tokens, 5 steps), above the " +
            "process's resident memory before the model was built, per trainable parameter. \"State\" counts the tensors the engine keeps " +
            "between steps, as the engine sizes them: weights, gradient buffers, fp32 master weights in bf16, and AdamW's two moments; " +
            "\"working buffers\" its one-bucket all-reduce staging (the optimizer widens 1,024 values at a time on the stack).",
            "",
            "| precision | gradients accumulate in (grad_accum_dtype) | parameters | state bytes/param | working buffers, bytes/param | peak bytes/param (state + buffers + activations + allocator) |",
            "|---|---|---|---|---|---|",
        };
        foreach (var r in runs)
            lines.Add($"| {r.Precision} | {r.Accumulation} | {r.Parameters / 1e6:F1} M | {(double)r.StateBytes / r.Parameters:F1} | {(double)r.WorkingBytes / r.Parameters:F2} | {(double)(r.PeakBytes - r.BaselineBytes) / r.Parameters:F1} |");
        lines.Add("");
        lines.Add("ZeRO's paper counts 16 bytes/param for mixed-precision stage 0 (2 fp16 weights + 2 fp16 gradients + 12 fp32 optimizer state; " +
            "goal: at most 16 plus activations). bf16 by default accumulates gradients in fp32, as DeepSpeed's BF16_Optimizer does, which adds 4. " +
            "With `\"data_types\": { \"grad_accum_dtype\": \"bf16\" }` only the model's bf16 gradients are kept; each bucket is widened to fp32 " +
            "for its all-reduce in a working buffer of one bucket (25 MiB by default), and each 1,024-value block for the optimizer on the stack: " +
            "neither grows with the model.");
        lines.Add("");
        int steps = leak.Interval * leak.Resident.Length, half = leak.Resident.Length / 2;
        double lastHalf = (leak.Resident[^1] - leak.Resident[half - 1]) / 1048576.0;
        lines.Add($"Long run: an MLP trained for {steps:N0} steps, its resident memory measured after a full garbage collection every " +
            $"{leak.Interval:N0} steps (MiB): {string.Join(", ", leak.Resident.Select(bytes => (bytes / 1048576.0).ToString("F1")))}. " +
            $"Over the last {steps - half * leak.Interval:N0} steps it moved by {lastHalf:F1} MiB ({lastHalf * 1024 / (steps - half * leak.Interval):F2} KiB per step); " +
            $"the .NET heap stayed between {leak.Managed.Min() / 1048576.0:F2} and {leak.Managed.Max() / 1048576.0:F2} MiB. " +
            Machine.Note());
        return string.Join('\n', lines);
    }

    /// <summary>The child side: peak memory of 5 steps in one precision.</summary>
    public static MemoryResult MeasureMemory(ZeroPrecision precision, ZeroPrecision accumulation)
    {
        var data = SentimentBatch.Load(BatchRows, SequenceLength);
        var checkpoint = data.Checkpoint;
        long baseline = ResidentMemory.Current();
        var result = InProcessLauncher.Run(1, TimeSpan.FromMinutes(5), communicator =>
        {
            TorchRuntime.UseCoreShare(1);
            using var model = new BertClassifier(checkpoint.Config, 2, new Generator(0));
            checkpoint.LoadInto(model.Encoder);
            model.train();
            long parameters = model.parameters().Sum(p => p.numel());
            var settings = EngineSettings.Fp32(new OptimizerSettings(ZeroOptimizer.AdamW, 5e-5, 0.9, 0.999, 1e-8, 0.01, 0)) with { Precision = precision, GradientAccumulationDataType = accumulation };
            using var engine = new ZeroEngine(model, communicator, settings);
            for (int step = 0; step < 5; step++)
                engine.Step(new Func<Tensor?>[] { () => nn.functional.cross_entropy(model.forward(data.Collate()).to(ScalarType.Float32),
                    tensor(data.Labels), reduction: nn.Reduction.Sum) }, BatchRows);
            if (!engine.Core.UsesFlatAdamW)
                throw new InvalidOperationException("The built-in AdamW should step the flat weights: the state count leaves TorchSharp's optimizers out.");
            return new MemoryResult(precision.ToString(), accumulation.ToString(), parameters, baseline, ResidentMemory.Peak(), engine.Core.StateBytes, engine.Core.WorkingBytes);
        });
        return result[0];
    }

    /// <summary>The child side: resident memory over a long MLP run.</summary>
    public static LeakResult MeasureLongRun()
    {
        TorchRuntime.EnsureLoaded();
        const int Steps = 16_000, Interval = 1000;
        var iris = Datasets.Iris();
        var species = iris.Select(r => r.Label).Distinct().ToList();
        var features = iris.SelectMany(r => r.Features).ToArray();
        var labels = iris.Select(r => (long)species.IndexOf(r.Label)).ToArray();
        return InProcessLauncher.Run(1, TimeSpan.FromMinutes(5), communicator =>
        {
            var resident = new List<long>();
            var managed = new List<long>();
            using var model = new MlpClassifier(new MlpShape(4, new[] { 64, 64 }, 3, MlpActivation.Relu, 0.1f), new Generator(0));
            using var engine = new ZeroEngine(model, communicator, EngineSettings.Fp32(new OptimizerSettings(ZeroOptimizer.AdamW, 1e-3, 0.9, 0.999, 1e-8, 0.01, 0)));
            var shard = new TabularEpochShard(model, new MlpModelFactory(model.Shape), features, labels, model.Shape.InputSize);
            for (int step = 0; step < Steps; step++)
            {
                int start = step * 16 % (iris.Length - 16);
                engine.Step(new Func<Tensor?>[] { () => shard.LossSum(start, 16) }, 16);
                if ((step + 1) % Interval == 0)
                {
                    var (bytes, heap) = AfterCollection();
                    resident.Add(bytes);
                    managed.Add(heap);
                }
            }
            return new LeakResult(Interval, resident.ToArray(), managed.ToArray());
        })[0];
    }

    // Resident memory and the .NET heap once every collectable object (tensor wrappers included) is gone.
    private static (long Resident, long Managed) AfterCollection()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return (ResidentMemory.Current(), GC.GetTotalMemory(forceFullCollection: false));
    }
}
