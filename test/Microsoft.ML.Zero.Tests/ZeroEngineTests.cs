using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>The deepspeed.initialize-style engine over a user's module: ranks, accumulation, checkpoints, bad input.</summary>
[TestClass]
public sealed class ZeroEngineTests
{
    [TestMethod]
    public void TwoRanksMatchOneRankWithTheSameGlobalBatch()
    {
        float[] one = IrisCnnEngineTraining.Train(worldSize: 1, microBatch: 16);
        float[] two = IrisCnnEngineTraining.Train(worldSize: 2, microBatch: 8);
        double maxDiff = one.Zip(two, (a, b) => Math.Abs(a - b)).Max();
        Assert.IsTrue(maxDiff <= 1e-5, $"max |1 x 16 - 2 x 8| = {maxDiff}");
        Assert.IsTrue(one.Zip(IrisCnnEngineTraining.Initial(), (a, b) => a != b).Any(), "training did not change the weights");
    }

    [TestMethod]
    public void Bf16MicroBatchesAddUpInFp32WhetherOrNotTheirForwardWentThroughTheEngine()
    {
        // bf16 accumulates gradients in fp32 by default: each micro-batch's are added in when it ends. A loop that calls
        // the module itself (not engine.Forward) must get the same steps.
        float[] Train(bool throughForward)
        {
            var (features, labels) = IrisCnnEngineTraining.Data();
            var factory = new IrisCnnFactory();
            float[] weights = Array.Empty<float>();
            ZeroEngine.Launch(1, rank =>
            {
                using var model = rank.CreateModel(IrisCnnEngineTraining.Seed, () => factory.CreateModel(4, 3));
                var options = new DeepSpeedOptions { Precision = ZeroPrecision.Bf16, GradientAccumulationSteps = 4, TrainMicroBatchSizePerGpu = 4 };
                using var engine = ZeroEngine.Initialize(model, options);
                for (int micro = 0; micro < 32; micro++)
                {
                    using var scope = NewDisposeScope();
                    int first = micro * 4 % (features.Length - 4);
                    var x = factory.BuildInput(tensor(features.Skip(first).Take(4).SelectMany(f => f).ToArray(), new long[] { 4, 4 }));
                    var y = tensor(labels.Skip(first).Take(4).ToArray());
                    var scores = throughForward ? engine.Forward(x) : model.call(x.to(ScalarType.BFloat16));
                    engine.Backward(factory.LossSum(scores, y) / 4);
                    engine.Step();
                }
                engine.RestoreFullPrecision();
                weights = IrisFixtures.Weights(model);
            });
            return weights;
        }
        CollectionAssert.AreEqual(Train(throughForward: true), Train(throughForward: false));
    }

    [TestMethod]
    public void AccumulationStepsOnlyAtTheBoundaryAndTheBoundaryCanBeSet()
    {
        var steps = new List<(bool Boundary, bool Stepped, long GlobalStep)>();
        ZeroEngine.Launch(2, rank =>
        {
            using var model = rank.CreateModel(1, () => nn.Linear(4, 3));
            using var engine = ZeroEngine.Initialize(model, new DeepSpeedOptions { GradientAccumulationSteps = 3, TrainMicroBatchSizePerGpu = 2 });
            Assert.AreEqual(3, engine.GradientAccumulationSteps);
            Assert.AreEqual(2, engine.WorldSize);
            for (int micro = 0; micro < 7; micro++)
            {
                if (micro == 4)
                    engine.SetGradientAccumulationBoundary(true);   // a short window: micro-batches 3 and 4
                bool boundary = engine.IsGradientAccumulationBoundary;
                using var scope = NewDisposeScope();
                var loss = engine.Forward(ones(2, 4) * (micro + 1)).pow(2).mean();
                engine.Backward(loss);
                var result = engine.Step();
                if (rank.Rank == 0)
                    steps.Add((boundary, result is not null, engine.GlobalStep));
            }
        });
        // As DeepSpeed's is_gradient_accumulation_boundary: every third micro-step by count ((micro + 1) % 3 == 0),
        // plus the one set by hand.
        CollectionAssert.AreEqual(new[] { false, false, true, false, true, true, false }, steps.Select(s => s.Boundary).ToArray());
        CollectionAssert.AreEqual(steps.Select(s => s.Boundary).ToArray(), steps.Select(s => s.Stepped).ToArray());
        Assert.AreEqual(3L, steps[^1].GlobalStep);
    }

    [TestMethod]
    public void ACheckpointWithTorchSharpsOptimizerStateDoesNotLoadIntoTheBuiltInAdamW()
    {
        // Checkpoints of a TorchSharp optimizer hold optim_states.pt; the built-in AdamW keeps optim_states.bin. Loading
        // one into the other is an error that names both files.
        using var directory = new TempFolder("zero-engine-optimizer-");
        ZeroEngine.Launch(1, rank =>
        {
            using var model = rank.CreateModel(3, () => nn.Linear(4, 3));
            using (var torchSharp = ZeroEngine.Initialize(model, new DeepSpeedOptions(), parameters => optim.AdamW(parameters, 0.01)))
            {
                torchSharp.Backward(torchSharp.Forward(ones(2, 4)).pow(2).mean());
                torchSharp.Step();
                torchSharp.SaveCheckpoint(directory.Path);
            }
            using var builtIn = ZeroEngine.Initialize(model, new DeepSpeedOptions());
            var error = Assert.ThrowsExactly<InvalidDataException>(() => builtIn.LoadCheckpoint(directory.Path));
            StringAssert.Contains(error.Message, "holds TorchSharp's optimizer state ('optim_states.pt')");
            StringAssert.Contains(error.Message, "the built-in AdamW now keeps its state in 'optim_states.bin'");
        });
    }

    [TestMethod]
    public void ACheckpointResumesToTheWeightsOfAnUninterruptedRun()
    {
        using var directory = new TempFolder("zero-engine-checkpoint-");
        float[] Run(bool stopAndResume)
        {
            float[] weights = Array.Empty<float>();
            var data = IrisCnnEngineTraining.Data();
            void Train(ZeroEngine engine, int from, int to)
            {
                for (int step = from; step < to; step++)
                {
                    using var scope = NewDisposeScope();
                    var x = tensor(data.Features.Skip(step * 8).Take(8).SelectMany(f => f).ToArray(), new long[] { 8, 1, 4 });
                    var y = tensor(data.Labels.Skip(step * 8).Take(8).ToArray());
                    engine.Backward(nn.functional.cross_entropy(engine.Forward(x), y));
                    engine.Step();
                }
            }
            var options = new DeepSpeedOptions { Precision = ZeroPrecision.Bf16, Scheduler = new WarmupLR { WarmupNumSteps = 5 } };
            ZeroEngine.Launch(1, rank =>
            {
                using var model = rank.CreateModel(3, () => new IrisCnn(4, 3));
                using var engine = ZeroEngine.Initialize(model, options);
                Train(engine, 0, 6);
                if (stopAndResume)
                {
                    engine.SaveCheckpoint(directory.Path, clientState: new Dictionary<string, string> { ["step"] = "6" });
                    Train(engine, 6, 9);   // steps the resumed run must not see
                }
                else
                {
                    Train(engine, 6, 12);
                    engine.RestoreFullPrecision();
                    weights = IrisFixtures.Weights(model);
                }
            });
            if (!stopAndResume)
                return weights;
            ZeroEngine.Launch(1, rank =>
            {
                using var model = rank.CreateModel(99, () => new IrisCnn(4, 3));
                using var engine = ZeroEngine.Initialize(model, options);
                var client = engine.LoadCheckpoint(directory.Path);
                Assert.AreEqual("6", client["step"]);
                Assert.AreEqual(6L, engine.GlobalStep);
                Train(engine, int.Parse(client["step"]), 12);
                engine.RestoreFullPrecision();
                weights = IrisFixtures.Weights(model);
            });
            return weights;
        }

        var uninterrupted = Run(stopAndResume: false);
        var resumed = Run(stopAndResume: true);
        CollectionAssert.AreEqual(uninterrupted, resumed);
        Assert.IsTrue(File.Exists(directory.Combine("global_step6", "state.json")));
        Assert.AreEqual("global_step6", File.ReadAllText(directory.Combine("latest")));
    }

    [TestMethod]
    public void TheEngineWritesTheCsvMonitorEveryOptimizerStep()
    {
        using var folder = new TempFolder("zero-engine-csv-");
        var options = DeepSpeedOptions.FromDeepSpeedConfig($$"""
            { "train_batch_size": 8, "gradient_accumulation_steps": 2, "csv_monitor": { "enabled": true, "output_path": "{{folder.Path}}", "job_name": "engine" } }
            """);
        var losses = new List<float>();
        ZeroEngine.Launch(2, rank =>
        {
            using var model = rank.CreateModel(1, () => nn.Linear(4, 3));
            using var engine = ZeroEngine.Initialize(model, options);
            for (int micro = 0; micro < 6; micro++)
            {
                using var scope = NewDisposeScope();
                engine.Backward(engine.Forward(ones(2, 4) * micro).pow(2).mean());
                if (engine.Step() is { } result && rank.Rank == 0)
                    losses.Add(result.Loss);
            }
        });
        var lines = File.ReadAllLines(folder.Combine("engine", "Train_Samples_train_loss.csv"));
        Assert.AreEqual("step,train_loss", lines[0]);
        var rows = lines.Skip(1).Select(l => l.Split(',')).ToArray();
        // 3 optimizer steps of train_batch_size 8: samples 8, 16, 24.
        CollectionAssert.AreEqual(new[] { "8", "16", "24" }, rows.Select(r => r[0]).ToArray());
        CollectionAssert.AreEqual(losses.ToArray(), rows.Select(r => (float)double.Parse(r[1], System.Globalization.CultureInfo.InvariantCulture)).ToArray());
        Assert.AreEqual(3, losses.Count);
    }

    [TestMethod]
    public void BadCallsSayWhatIsWrong()
    {
        ZeroEngine.Launch(1, rank =>
        {
            using var pair = rank.CreateModel(1, () => new PairModel());
            using var engine = ZeroEngine.Initialize(pair);
            var forward = Assert.ThrowsExactly<InvalidOperationException>(() => engine.Forward(ones(2, 4)));
            StringAssert.Contains(forward.Message, "PairModel does not take one tensor");
            var backward = Assert.ThrowsExactly<ArgumentException>(() => engine.Backward(ones(3)));
            StringAssert.Contains(backward.Message, "Backward needs a scalar loss; got shape [3]");
            using var empty = new TempFolder("zero-engine-empty-");
            var load = Assert.ThrowsExactly<DirectoryNotFoundException>(() => engine.LoadCheckpoint(empty.Path));
            StringAssert.Contains(load.Message, empty.Path);
            var tag = Assert.ThrowsExactly<DirectoryNotFoundException>(() => engine.LoadCheckpoint(empty.Path, "global_step7"));
            StringAssert.Contains(tag.Message, "Checkpoint 'global_step7'");

            using var linear = nn.Linear(4, 3);
            var schedule = Assert.ThrowsExactly<ArgumentException>(() => ZeroEngine.Initialize(linear, schedule: new WarmupDecayLR()));
            StringAssert.Contains(schedule.Message, "WarmupDecayLR.TotalNumSteps (scheduler.params.total_num_steps) is not set");

            // A tag is a folder name inside the checkpoint folder, never a way out of it.
            using var parent = new TempFolder("zero-engine-tags-");
            string checkpoints = parent.Combine("checkpoints");
            foreach (string bad in new[] { "..", ".", "latest", "/tmp/elsewhere", "a/b", "x.partial" })
            {
                var tagError = Assert.ThrowsExactly<ArgumentException>(() => engine.SaveCheckpoint(checkpoints, bad), bad);
                StringAssert.Contains(tagError.Message, $"Checkpoint tag '{bad}' must be a plain folder name");
            }
            Assert.IsTrue(Directory.Exists(parent.Path), "a bad tag deleted a folder");
        });

        ZeroEngine.Launch(1, rank =>
        {
            // bf16: once the model is back in fp32 for evaluation, the engine no longer holds its gradients.
            using var model = rank.CreateModel(1, () => nn.Linear(4, 3));
            using var engine = ZeroEngine.Initialize(model, new DeepSpeedOptions { Precision = ZeroPrecision.Bf16 });
            engine.Backward(engine.Forward(ones(2, 4)).sum());
            engine.Step();
            engine.RestoreFullPrecision();
            var ended = Assert.ThrowsExactly<InvalidOperationException>(() => engine.Forward(ones(2, 4)));
            StringAssert.Contains(ended.Message, "RestoreFullPrecision put the model back in fp32 and ended training");
        });

        ZeroEngine.Launch(1, rank =>
        {
            using var model = rank.CreateModel(1, () => nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)));
            var options = new DeepSpeedOptions();
            options.ZeroOptimization.OverlapCommunication = true;
            using var engine = ZeroEngine.Initialize(model, options);
            var output = engine.Forward(ones(2, 4));
            engine.Backward(output.sum(), scaleWithAccumulation: true);
            var twice = Assert.ThrowsExactly<InvalidOperationException>(() => engine.Backward(engine.Forward(ones(2, 4)).sum()));
            StringAssert.Contains(twice.Message, "overlap_comm");
        });
        var world = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ZeroEngine.Launch(0, _ => { }));
        StringAssert.Contains(world.Message, "worldSize is 0; expected at least 1");
    }

    // Without a micro-batch, Initialize derives one from train_batch_size / (world x gradient_accumulation_steps). That
    // product was an unchecked int: 4 ranks x 2^30 wrapped to 0 and threw DivideByZeroException, as did 0 steps.
    [TestMethod]
    [DataRow(4, 1 << 30, null, "gradient_accumulation_steps (DeepSpeedOptions.GradientAccumulationSteps) 1073741824 x world size 4 = 4294967296")]
    [DataRow(4, 1 << 30, 64, "gradient_accumulation_steps (DeepSpeedOptions.GradientAccumulationSteps) 1073741824 x world size 4 = 4294967296")]
    [DataRow(2, int.MaxValue, null, "gradient_accumulation_steps (DeepSpeedOptions.GradientAccumulationSteps) 2147483647 x world size 2 = 4294967294")]
    [DataRow(1, 0, null, "DeepSpeedOptions.GradientAccumulationSteps is 0; expected at least 1")]
    public void AnAccumulationTimesWorldSizeOutOfRangeIsNamed(int worldSize, int accumulation, int? trainBatch, string expected)
    {
        ZeroEngine.Launch(worldSize, rank =>
        {
            using var model = rank.CreateModel(1, () => nn.Linear(4, 3));
            var options = new DeepSpeedOptions { GradientAccumulationSteps = accumulation, TrainBatchSize = trainBatch };
            var error = Assert.Throws<ArgumentException>(() => ZeroEngine.Initialize(model, options));
            StringAssert.Contains(error.Message, expected);
        });
    }

    [TestMethod]
    public void AnOptimizerPassedInIsUsedWithTheSchedule()
    {
        var rates = new List<double>();
        ZeroEngine.Launch(1, rank =>
        {
            using var model = rank.CreateModel(1, () => nn.Linear(4, 3));
            using var engine = ZeroEngine.Initialize(model, new DeepSpeedOptions(), parameters => optim.SGD(parameters, 0.5),
                new WarmupLR { WarmupMinLR = 0, WarmupNumSteps = 4, Type = WarmupType.Linear });
            for (int step = 0; step < 4; step++)
            {
                using var scope = NewDisposeScope();
                engine.Backward(engine.Forward(ones(2, 4)).sum());
                rates.Add(engine.Step()!.Value.LearningRate);
            }
        });
        // DeepSpeed's WarmupLR from the SGD's own rate 0.5: step k uses iteration k - 2 (first two at the minimum).
        CollectionAssert.AreEqual(new[] { 0.0, 0.0, 0.5 / 4, 0.5 * 2 / 4 }, rates.ToArray());
    }

    private sealed class PairModel : nn.Module<Tensor, Tensor, Tensor>
    {
        private readonly Linear layer = nn.Linear(4, 1);

        public PairModel() : base(nameof(PairModel)) => RegisterComponents();

        public override Tensor forward(Tensor a, Tensor b) => layer.call(a) + layer.call(b);
    }
}
