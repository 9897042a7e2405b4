using static TorchSharp.torch;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.Models;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// The engine's step on a small MLP and iris rows: precision, loss scaling, clipping, gradient averaging and schedules,
/// on 1 and 2 in-process ranks.
/// </summary>
[TestClass]
public sealed class EngineStepTests
{
    private static readonly MlpShape Shape = new(4, new[] { 8 }, 3, MlpActivation.Relu, 0);
    private static readonly IrisRow[] Iris = Datasets.Iris();
    private static readonly Dictionary<string, int> Species = Iris.Select(r => r.Label).Distinct().Select((l, i) => (l, i)).ToDictionary(p => p.l, p => p.i);

    private sealed record RankRun(ZeroStepResult[] Steps, float[][] WeightsAfterStep);

    /// <summary>Runs <paramref name="steps"/> steps; rank r's micro-batch of step s is 4 iris rows (optionally poisoned).</summary>
    private static RankRun[] Train(int world, EngineSettings settings, int steps, Func<int, int, bool>? poison = null)
    {
        TorchRuntimeForTests.Load();
        manual_seed(1);
        var replicas = Enumerable.Range(0, world).Select(rank => new MlpClassifier(Shape, new Generator((ulong)rank))).ToArray();
        try
        {
            return InProcessLauncher.Run(world, TimeSpan.FromMinutes(1), communicator =>
            {
                var model = replicas[communicator.Rank];
                using var engine = new ZeroEngine(model, communicator, settings);
                var results = new List<ZeroStepResult>();
                var weights = new List<float[]>();
                for (int step = 0; step < steps; step++)
                {
                    int first = (step * world + communicator.Rank) * 4 % (Iris.Length - 4);
                    bool poisoned = poison?.Invoke(communicator.Rank, step) == true;
                    results.Add(engine.Step(new Func<Tensor?>[] { () => LossSum(model, first, poisoned) }, 4 * world));
                    weights.Add(IrisFixtures.Weights(model));
                }
                return new RankRun(results.ToArray(), weights.ToArray());
            });
        }
        finally
        {
            foreach (var replica in replicas)
                replica.Dispose();
        }
    }

    // A poisoned batch has features far beyond fp16's range (65504), so its fp16 forward overflows.
    private static Tensor LossSum(MlpClassifier model, int first, bool poisoned)
    {
        var rows = Iris.Skip(first).Take(4).ToArray();
        var x = tensor(rows.SelectMany(r => r.Features).Select(v => poisoned ? v * 1e6f : v).ToArray(), new long[] { 4, 4 });
        var y = tensor(rows.Select(r => (long)Species[r.Label]).ToArray(), new long[] { 4 });
        return nn.functional.cross_entropy(model.forward(x).to(ScalarType.Float32), y, reduction: nn.Reduction.Sum);
    }

    private static OptimizerSettings Sgd(double learningRate, double momentum = 0) => new(ZeroOptimizer.Sgd, learningRate, 0.9, 0.999, 1e-8, 0, momentum);

    private static OptimizerSettings AdamW(double weightDecay = 0.01) => new(ZeroOptimizer.AdamW, 0.01, 0.9, 0.999, 1e-8, weightDecay, 0);

    private static double Distance(float[] a, float[] b) => Math.Sqrt(a.Zip(b, (x, y) => (double)(x - y) * (x - y)).Sum());

    [TestMethod]
    public void Fp16OverflowOnOneRankSkipsTheStepEverywhereAndTheScaleMovesAsDeepSpeeds()
    {
        // Rank 1's batches of steps 2, 3 and 4 overflow; with hysteresis 2 the first overflow only uses up the
        // hysteresis, the next two halve the scale; 3 clean steps (the window) later it doubles.
        var settings = new EngineSettings(ZeroPrecision.Fp16, new Fp16Options { InitialScalePower = 8, LossScaleWindow = 3 }, 0, false, 1, AdamW(),
            new WarmupLR { WarmupMinLR = 0.001, WarmupMaxLR = 0.01, WarmupNumSteps = 4, Type = WarmupType.Linear });
        var runs = Train(2, settings, 12, poison: (rank, step) => rank == 1 && step is 2 or 3 or 4);

        for (int step = 0; step < 12; step++)
        {
            Assert.AreEqual(runs[0].Steps[step], runs[1].Steps[step], $"step {step}: ranks disagree");
            CollectionAssert.AreEqual(runs[0].WeightsAfterStep[step], runs[1].WeightsAfterStep[step], $"step {step}: replicas differ");
            Assert.IsTrue(runs[0].WeightsAfterStep[step].All(float.IsFinite), $"step {step}: non-finite weights");
        }
        var steps = runs[0].Steps;
        CollectionAssert.AreEqual(new[] { false, false, true, true, true, false, false, false, false, false, false, false }, steps.Select(s => s.Skipped).ToArray());
        CollectionAssert.AreEqual(new double[] { 256, 256, 256, 256, 128, 64, 64, 64, 64, 128, 128, 128 }, steps.Select(s => s.LossScale).ToArray());
        for (int step = 2; step <= 4; step++)
            CollectionAssert.AreEqual(runs[0].WeightsAfterStep[1], runs[0].WeightsAfterStep[step], $"skipped step {step} changed the weights");

        // Skipped steps do not advance the schedule: optimizer steps 1..9 use iterations -1, 0, 1, 2, ... (k - 2).
        double Warmup(int iteration) => iteration < 0 ? 0.001 : 0.001 + 0.009 * Math.Min(1.0, iteration / 4.0);
        var applied = steps.Where(s => !s.Skipped).Select(s => s.LearningRate).ToArray();
        for (int k = 1; k <= applied.Length; k++)
            Assert.AreEqual(Warmup(k - 2), applied[k - 1], 1e-12, $"optimizer step {k}");
    }

    [TestMethod]
    public void Fp16OverflowAtTheMinimumScaleStopsEveryRankWithAClearError()
    {
        var settings = new EngineSettings(ZeroPrecision.Fp16, new Fp16Options { InitialScalePower = 2, Hysteresis = 1, MinLossScale = 1 }, 0, false, 1, AdamW(), null);
        var error = Assert.ThrowsExactly<ZeroRankFailedException>(() => Train(2, settings, 10, poison: (rank, _) => rank == 1));
        StringAssert.Contains(error.ToString(), "fp16.min_loss_scale");
    }

    [TestMethod]
    public void MixedPrecisionKeepsFp32MasterWeightsAndReturnsAnFp32Model()
    {
        foreach (var precision in new[] { ZeroPrecision.Bf16, ZeroPrecision.Fp16 })
        {
            TorchRuntimeForTests.Load();
            manual_seed(1);
            var model = new MlpClassifier(Shape, new Generator(0));
            var settings = new EngineSettings(precision, new Fp16Options(), 0, false, 1, Sgd(1e-3), null);
            InProcessLauncher.Run(1, TimeSpan.FromMinutes(1), communicator =>
            {
                using var engine = new ZeroEngine(model, communicator, settings);
                var before = IrisFixtures.Weights(model);
                for (int step = 0; step < 20; step++)
                    engine.Step(new Func<Tensor?>[] { () => LossSum(model, step * 4, false) }, 4);
                Assert.AreEqual(precision == ZeroPrecision.Bf16 ? ScalarType.BFloat16 : ScalarType.Float16, model.parameters().First().dtype);
                var lowPrecision = IrisFixtures.Weights(model);
                engine.RestoreFullPrecision();
                Assert.AreEqual(ScalarType.Float32, model.parameters().First().dtype);
                var master = IrisFixtures.Weights(model);
                // Updates of lr 1e-3 are far below bf16's resolution near 0.3, yet the fp32 master weights keep them.
                Assert.IsTrue(Distance(master, before) > 0, $"{precision}: master weights did not move");
                Assert.IsTrue(master.Zip(lowPrecision).Any(p => p.First != p.Second), $"{precision}: master weights equal their low-precision copies");
                double rounding = master.Zip(lowPrecision, (m, l) => Math.Abs(m - l) / Math.Max(Math.Abs(m), 1e-3)).Max();
                Assert.IsTrue(rounding < (precision == ZeroPrecision.Bf16 ? 1e-2 : 1e-3), $"{precision}: model copy is not the rounded master ({rounding})");
                return true;
            });
            model.Dispose();
        }
    }

    [TestMethod]
    public void ClippingLimitsTheAveragedGradientNormIdenticallyOnEveryRank()
    {
        var clipped = new EngineSettings(ZeroPrecision.Fp32, new Fp16Options(), 0.05, false, 1, Sgd(0.1), null);
        var runs = Train(2, clipped, 1);
        var unclipped = Train(2, clipped with { GradientClipping = 0 }, 1);
        var initial = Train(2, clipped with { Optimizer = Sgd(0) }, 1)[0].WeightsAfterStep[0];

        Assert.IsTrue(runs[0].Steps[0].GradientNorm > 0.05, $"gradient norm {runs[0].Steps[0].GradientNorm} is already below the clip");
        CollectionAssert.AreEqual(runs[0].WeightsAfterStep[0], runs[1].WeightsAfterStep[0]);
        // SGD without momentum moves the weights by lr x gradient: clipped, that is 0.1 x 0.05.
        Assert.AreEqual(0.1 * 0.05, Distance(runs[0].WeightsAfterStep[0], initial), 1e-5);
        Assert.AreEqual(0.1 * runs[0].Steps[0].GradientNorm, Distance(unclipped[0].WeightsAfterStep[0], initial), 1e-5);
    }

    [TestMethod]
    public void PrescaleAndPredivideDivideTheGradientsBeforeTheAllReduceAndTheRestAfter()
    {
        // In fp32 dividing before or after the sum gives the same average, so only fp16 shows where the division happens.
        // fp16 rounds and overflows alike at every power of two, so gradients divided by 2^d before the sum at loss scale
        // 2^k are bit for bit the undivided ones at 2^(k-d): prescale_gradients (/ 2 ranks) and gradient_predivide_factor 4
        // at 2^k must take exactly the steps of a plain run at 2^(k-1) and 2^(k-2), where the plain run at 2^k overflows.
        var plain = new EngineSettings(ZeroPrecision.Fp16, new Fp16Options(), 0, false, 1, AdamW(), null);
        static EngineSettings At(EngineSettings settings, int power) => settings with { LossScaling = new Fp16Options { InitialScalePower = power } };
        int overflowing = Enumerable.Range(0, 24).First(power => Train(2, At(plain, power), 1)[0].Steps[0].Skipped);
        Assert.IsGreaterThanOrEqualTo(2, overflowing, "the plain run overflows at the lowest loss scales already");

        foreach (var (variant, divisorPower) in new[] { (plain with { PrescaleGradients = true }, 1), (plain with { GradientPredivideFactor = 4 }, 2) })
        {
            string name = variant.PrescaleGradients ? "prescale_gradients" : "gradient_predivide_factor 4";
            var divided = Train(2, At(variant, overflowing), 4)[0];
            var undivided = Train(2, At(plain, overflowing - divisorPower), 4)[0];
            // An engine that ignored the option would overflow at 2^k like the plain run and skip this step.
            Assert.IsFalse(divided.Steps[0].Skipped, $"{name}, step 0: the gradients overflowed at loss scale 2^{overflowing}, as undivided ones do");
            for (int step = 0; step < divided.Steps.Length; step++)
            {
                Assert.AreEqual(undivided.Steps[step].LossScale * (1 << divisorPower), divided.Steps[step].LossScale, $"{name}, step {step}: loss scale");
                Assert.AreEqual(undivided.Steps[step] with { LossScale = 0 }, divided.Steps[step] with { LossScale = 0 }, $"{name}, step {step}: loss, skip or rate");
                CollectionAssert.AreEqual(undivided.WeightsAfterStep[step], divided.WeightsAfterStep[step], $"{name}, step {step}: weights");
            }
        }
    }

    [TestMethod]
    public void OptimizersFollowTheirDefinitions()
    {
        EngineSettings With(OptimizerSettings optimizer) => new(ZeroPrecision.Fp32, new Fp16Options(), 0, false, 1, optimizer, null);
        var adamW = Train(1, With(AdamW(weightDecay: 0.5)), 5)[0].WeightsAfterStep[^1];
        var adam = Train(1, With(AdamW(weightDecay: 0.5) with { Kind = ZeroOptimizer.Adam }), 5)[0].WeightsAfterStep[^1];
        var adamNoDecay = Train(1, With(AdamW(weightDecay: 0) with { Kind = ZeroOptimizer.Adam }), 5)[0].WeightsAfterStep[^1];
        var adamWNoDecay = Train(1, With(AdamW(weightDecay: 0)), 5)[0].WeightsAfterStep[^1];
        // The same up to float rounding: the two take different kernels, which round alike on some CPUs only.
        Assert.IsTrue(Distance(adamNoDecay, adamWNoDecay) < 1e-6, "without weight decay Adam and AdamW are the same");
        Assert.IsTrue(Distance(adam, adamW) > 1e-4, "L2 decay (Adam) and decoupled decay (AdamW) must differ");

        var momentum = Train(1, With(Sgd(0.05, momentum: 0.9)), 5)[0].WeightsAfterStep[^1];
        var nesterov = Train(1, With(Sgd(0.05, momentum: 0.9) with { Nesterov = true }), 5)[0].WeightsAfterStep[^1];
        Assert.IsTrue(Distance(momentum, nesterov) > 1e-5, "Nesterov momentum had no effect");
    }

    [TestMethod]
    public void TheScheduleSetsTheRateTheOptimizerUses()
    {
        // SGD without momentum moves by lr x gradient, so a step at rate 0 leaves the weights as they were.
        var settings = new EngineSettings(ZeroPrecision.Fp32, new Fp16Options(), 0, false, 1, Sgd(0.1),
            new WarmupLR { WarmupMinLR = 0, WarmupNumSteps = 4, Type = WarmupType.Linear });
        var run = Train(1, settings, 6)[0];
        CollectionAssert.AreEqual(new[] { 0, 0, 0.025, 0.05, 0.075, 0.1 }, run.Steps.Select(s => Math.Round(s.LearningRate, 12)).ToArray());
        var initial = Train(1, settings with { Optimizer = Sgd(0), Scheduler = null }, 1)[0].WeightsAfterStep[0];
        CollectionAssert.AreEqual(initial, run.WeightsAfterStep[1], "steps at rate 0 changed the weights");
        Assert.IsTrue(Distance(run.WeightsAfterStep[1], run.WeightsAfterStep[2]) > 0);
    }

    [TestMethod]
    public void RanksWithUnevenShardsTrainWithoutHangingAndEndEqual()
    {
        // Rank 0 holds 75 rows and rank 1 30 (shards 5+ micro-batches apart); in-process ranks stand in for processes
        // that each read their own file.
        TorchRuntimeForTests.Load();
        manual_seed(1);
        var replicas = Enumerable.Range(0, 2).Select(rank => new MlpClassifier(Shape, new Generator((ulong)rank))).ToArray();
        var shards = new[] { Iris.Take(75).ToArray(), Iris.Skip(75).Take(30).ToArray() };
        var monitor = new RecordingMonitor();
        try
        {
            InProcessLauncher.Run(2, TimeSpan.FromSeconds(30), communicator =>
            {
                var own = shards[communicator.Rank];
                var rankTraining = new ShardedTraining(own.Length, new BatchSizes(16, 8, 1), 3, 5, EngineSettings.Fp32(AdamW()))
                {
                    InputPerRank = true,
                    Monitors = new[] { monitor },
                };
                rankTraining.Run(replicas[communicator.Rank], communicator, rows => new TabularEpochShard(replicas[communicator.Rank], new MlpModelFactory(Shape),
                    rows.SelectMany(r => own[r].Features).ToArray(), rows.Select(r => (long)Species[own[r].Label]).ToArray(), Shape.InputSize));
                return true;
            });
            CollectionAssert.AreEqual(IrisFixtures.Weights(replicas[0]), IrisFixtures.Weights(replicas[1]));
            var losses = monitor.Epochs.Select(e => e.MeanLoss).ToArray();
            Assert.AreEqual(3, losses.Length);
            Assert.IsTrue(losses.All(double.IsFinite) && losses[2] < losses[0], $"losses {string.Join(", ", losses)}");
        }
        finally
        {
            foreach (var replica in replicas)
                replica.Dispose();
        }
    }

    [TestMethod]
    public void OverlappedBucketsGiveTheSameWeightsAsOneAllReduceAfterBackward()
    {
        // 2 ranks, 2 micro-batches per step; buckets of 16 values split the MLP into [layer 1] and [layer 0]: layer 1's
        // bucket leaves during backward, layer 0's (its input needs no gradient) after it.
        foreach (var precision in new[] { ZeroPrecision.Fp32, ZeroPrecision.Bf16 })
        {
            var plain = new EngineSettings(precision, new Fp16Options(), 1.0, false, 1, AdamW(), null);
            var overlapped = plain with { OverlapCommunication = true, ReduceBucketSize = 16 };
            var (plainWeights, _) = TrainAccumulating(plain);
            var (overlappedWeights, early) = TrainAccumulating(overlapped);
            CollectionAssert.AreEqual(plainWeights, overlappedWeights, $"{precision}: overlapped buckets changed the result");
            Assert.AreEqual(6, early, $"{precision}: one bucket per step should leave during backward");
        }
    }

    [TestMethod]
    public void FlatAdamWTakesTheStepsOfTorchSharpsAdamW()
    {
        // The built-in AdamW steps the flat weights (fp32: the model's own, viewed; bf16: the master weights) in
        // cache-sized chunks; the same AdamW from TorchSharp, passed in with the same groups (no decay on biases), must
        // take the same steps. Clipping and a schedule included.
        foreach (var precision in new[] { ZeroPrecision.Fp32, ZeroPrecision.Bf16 })
        {
            var optimizer = AdamW(weightDecay: 0.1) with { ExcludeFromWeightDecay = name => name.EndsWith(".bias", StringComparison.Ordinal) };
            var flat = new EngineSettings(precision, new Fp16Options(), 0.5, false, 1, optimizer, new WarmupLR { WarmupNumSteps = 3 });
            var torchSharp = flat with
            {
                OptimizerFactory = parameters => optim.AdamW(new[]
                {
                    new TorchSharp.Modules.AdamW.ParamGroup(parameters.Where((_, i) => i % 2 == 0), 0.01, 0.9, 0.999, 1e-8, 0.1),
                    new TorchSharp.Modules.AdamW.ParamGroup(parameters.Where((_, i) => i % 2 == 1), 0.01, 0.9, 0.999, 1e-8, 0),
                }, 0.01),
            };
            var expected = Train(2, torchSharp, 8)[0].WeightsAfterStep;
            var actual = Train(2, flat, 8)[0].WeightsAfterStep;
            for (int step = 0; step < expected.Length; step++)
            {
                double maxDiff = expected[step].Zip(actual[step], (a, b) => Math.Abs(a - b)).Max();
                // Within float rounding: libtorch's vector kernels round differently on different CPUs (Intel, AMD).
                Assert.IsTrue(maxDiff < 1e-6, $"{precision}, step {step}: max |TorchSharp AdamW - flat AdamW| = {maxDiff}");
            }
            Assert.IsTrue(Distance(expected[0], expected[^1]) > 0, $"{precision}: the weights moved");
        }
    }

    [TestMethod]
    public void StepsLeaveNoTensorsBehind()
    {
        // Every tensor a step creates is freed by the step: the thread's live tensor count stays flat over many steps
        // (in bf16 with overlapped buckets and accumulation, the path with the most moving parts).
        TorchRuntimeForTests.Load();
        manual_seed(1);
        var settings = new EngineSettings(ZeroPrecision.Bf16, new Fp16Options(), 1.0, false, 1, AdamW(), null) { OverlapCommunication = true, ReduceBucketSize = 16 };
        var live = InProcessLauncher.Run(1, TimeSpan.FromMinutes(1), communicator =>
        {
            using var model = new MlpClassifier(Shape, new Generator(0));
            using var engine = new ZeroEngine(model, communicator, settings);
            long LiveAfter(int steps)
            {
                for (int step = 0; step < steps; step++)
                    engine.Step(new Func<Tensor?>[] { () => LossSum(model, step * 4, false), () => LossSum(model, step * 4 + 4, false) }, 8);
                return TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            }
            return (LiveAfter(3), LiveAfter(30));
        })[0];
        Assert.IsTrue(live.Item1 > 0, "the count sees the model's and engine's own tensors");
        Assert.AreEqual(live.Item1, live.Item2, "live tensors after 3 steps and after 30 more");
    }

    [TestMethod]
    public void GradientsAllReducedInSixteenBitsAreRoundedTheSameWithAndWithoutOverlap()
    {
        // fp32 training with a bf16 and an fp16 wire, bf16 training with a bf16 wire (its own gradients, sent uncopied):
        // the wire changes the result (its sums are rounded) but stays close, and overlapped buckets give the same bits.
        foreach (var (precision, wire) in new[] { (ZeroPrecision.Fp32, ZeroPrecision.Bf16), (ZeroPrecision.Fp32, ZeroPrecision.Fp16), (ZeroPrecision.Bf16, ZeroPrecision.Bf16) })
        {
            var fp32Wire = new EngineSettings(precision, new Fp16Options(), 1.0, false, 1, AdamW(), null);
            var sixteenBitWire = fp32Wire with { CommunicationDataType = wire };
            var (exact, _) = TrainAccumulating(fp32Wire);
            var (rounded, _) = TrainAccumulating(sixteenBitWire);
            var (overlapped, _) = TrainAccumulating(sixteenBitWire with { OverlapCommunication = true, ReduceBucketSize = 16 });
            string name = $"{precision} training, {wire} wire";
            CollectionAssert.AreEqual(rounded, overlapped, $"{name}: overlapped buckets changed the result");
            CollectionAssert.AreNotEqual(exact, rounded, $"{name}: the wire type made no difference");
            double distance = Distance(exact, rounded), size = Math.Sqrt(exact.Sum(v => (double)v * v));
            Assert.IsTrue(distance < 0.05 * size, $"{name}: |fp32 wire - 16-bit wire| = {distance} against |weights| = {size}");
        }
    }

    [TestMethod]
    public void GradientsAccumulatedInBf16ChangeOnlyWhatTheyRound()
    {
        // One rank, one micro-batch, no clipping: nothing is added, so keeping the gradients in bf16 (no fp32 copy; the
        // optimizer widens them) must take exactly the steps of fp32 accumulation, with the flat AdamW and with SGD.
        foreach (var optimizer in new[] { AdamW(), Sgd(0.05, momentum: 0.9) })
        {
            var fp32 = new EngineSettings(ZeroPrecision.Bf16, new Fp16Options(), 0, false, 1, optimizer, null);
            var bf16 = fp32 with { GradientAccumulationDataType = ZeroPrecision.Bf16 };
            var expected = Train(1, fp32, 6)[0].WeightsAfterStep;
            var actual = Train(1, bf16, 6)[0].WeightsAfterStep;
            for (int step = 0; step < expected.Length; step++)
                CollectionAssert.AreEqual(expected[step], actual[step], $"{optimizer.Kind}, step {step}");
        }

        // Two ranks of two micro-batches with clipping: the bf16 sums round, so the result moves, but only slightly;
        // overlapped buckets give the same bits as one all-reduce after backward.
        var accumulatedInFp32 = new EngineSettings(ZeroPrecision.Bf16, new Fp16Options(), 0.5, false, 1, AdamW(), null);
        var accumulatedInBf16 = accumulatedInFp32 with { GradientAccumulationDataType = ZeroPrecision.Bf16 };
        var (exact, _) = TrainAccumulating(accumulatedInFp32);
        var (rounded, _) = TrainAccumulating(accumulatedInBf16);
        var (overlapped, _) = TrainAccumulating(accumulatedInBf16 with { OverlapCommunication = true, ReduceBucketSize = 16 });
        CollectionAssert.AreEqual(rounded, overlapped, "overlapped buckets changed the result");
        CollectionAssert.AreNotEqual(exact, rounded, "the accumulation type made no difference");
        double distance = Distance(exact, rounded), size = Math.Sqrt(exact.Sum(v => (double)v * v));
        Assert.IsTrue(distance < 0.05 * size, $"|fp32 accumulation - bf16 accumulation| = {distance} against |weights| = {size}");
    }

    private static (float[] Weights, int BucketsDuringBackward) TrainAccumulating(EngineSettings settings)
    {
        TorchRuntimeForTests.Load();
        manual_seed(1);
        var replicas = Enumerable.Range(0, 2).Select(rank => new MlpClassifier(Shape, new Generator((ulong)rank))).ToArray();
        try
        {
            var results = InProcessLauncher.Run(2, TimeSpan.FromMinutes(1), communicator =>
            {
                var model = replicas[communicator.Rank];
                using var engine = new ZeroEngine(model, communicator, settings);
                for (int step = 0; step < 6; step++)
                {
                    int first = (step * 4 + communicator.Rank * 2) * 4 % (Iris.Length - 8);
                    engine.Step(new Func<Tensor?>[] { () => LossSum(model, first, false), () => LossSum(model, first + 4, false) }, 16);
                }
                engine.RestoreFullPrecision();
                return (IrisFixtures.Weights(model), engine.Core.BucketsReducedDuringBackward);
            });
            CollectionAssert.AreEqual(results[0].Item1, results[1].Item1, "ranks differ");
            return results[0];
        }
        finally
        {
            foreach (var replica in replicas)
                replica.Dispose();
        }
    }

    [TestMethod]
    public void OverlappedBucketsMatchOnABertWithDropout()
    {
        // A small random BERT: every layer's buckets but the embeddings' leave during backward.
        var config = new Models.Bert.BertConfig(100, 32, 2, 4, 64, "gelu", 0.1, 0.1, 32, 2, 1e-12, 0);
        float[] Run(bool overlap, out int early)
        {
            TorchRuntimeForTests.Load();
            manual_seed(3);
            var generators = new[] { new Generator(10), new Generator(11) };
            var replicas = generators.Select(g => new Models.Bert.BertClassifier(config, 2, g)).ToArray();
            var settings = new EngineSettings(ZeroPrecision.Fp32, new Fp16Options(), 0, false, 1, AdamW(), null)
                { OverlapCommunication = overlap, ReduceBucketSize = 3000 };
            try
            {
                var results = InProcessLauncher.Run(2, TimeSpan.FromMinutes(1), communicator =>
                {
                    var model = replicas[communicator.Rank];
                    model.train();
                    using var engine = new ZeroEngine(model, communicator, settings);
                    var random = new Random(communicator.Rank);
                    for (int step = 0; step < 4; step++)
                    {
                        var ids = tensor(Enumerable.Range(0, 4 * 12).Select(_ => (long)random.Next(1, 100)).ToArray(), new long[] { 4, 12 });
                        var batch = new Models.Bert.BertBatch(ids, zeros_like(ids), ones(4, 12, dtype: ScalarType.Bool));
                        var labels = tensor(new long[] { 0, 1, 1, 0 });
                        engine.Step(new Func<Tensor?>[] { () => nn.functional.cross_entropy(model.forward(batch), labels, reduction: nn.Reduction.Sum) }, 8);
                    }
                    return (IrisFixtures.Weights(model), engine.Core.BucketsReducedDuringBackward);
                });
                CollectionAssert.AreEqual(results[0].Item1, results[1].Item1, "ranks differ");
                early = results[0].Item2;
                return results[0].Item1;
            }
            finally
            {
                foreach (var replica in replicas)
                    replica.Dispose();
            }
        }

        var plain = Run(false, out _);
        var overlapped = Run(true, out int early);
        CollectionAssert.AreEqual(plain, overlapped, "overlapped buckets changed the result");
        Assert.IsTrue(early >= 4 * 3, $"only {early} buckets left during backward over 4 steps");
    }
}
