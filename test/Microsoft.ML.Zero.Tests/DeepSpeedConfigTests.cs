using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.Tests;

[TestClass]
public sealed class DeepSpeedConfigTests
{
    private const string SeedConfig = """
        {
          "train_batch_size": 32,
          "gradient_accumulation_steps": 1,
          "zero_optimization": { "stage": 0, "offload_optimizer": false, "offload_param": false, "overlap_comm": true }
        }
        """;

    [TestMethod]
    public void TheSeedConfigLoadsAsIs()
    {
        var options = DeepSpeedOptions.FromDeepSpeedConfig(SeedConfig);
        Assert.AreEqual(32, options.TrainBatchSize);
        Assert.AreEqual(1, options.GradientAccumulationSteps);
        Assert.IsNull(options.TrainMicroBatchSizePerGpu);
        Assert.AreEqual(0, options.ZeroOptimization.Stage);
        Assert.IsTrue(options.ZeroOptimization.OverlapCommunication);
        Assert.AreEqual(ZeroPrecision.Fp32, options.Precision);
        Assert.AreEqual(0, options.ConfigWarnings.Count);
        // On 2 ranks the 32 rows of a step split into micro-batches of 16.
        Assert.AreEqual(new BatchSizes(32, 16, 1), BatchSizes.Resolve(options.TrainBatchSize, null, options.GradientAccumulationSteps, 2));
    }

    [TestMethod]
    public void TheSampleConfigFileLoads()
    {
        string path = Path.Combine(RepositoryRoot(), "samples", "ds_config.json");
        var options = DeepSpeedOptions.FromDeepSpeedConfig(path);
        Assert.AreEqual(32, options.TrainBatchSize);
    }

    [TestMethod]
    public void EveryKeyIsRead()
    {
        var options = DeepSpeedOptions.FromDeepSpeedConfig("""
            {
              "train_micro_batch_size_per_gpu": 8, "gradient_accumulation_steps": 4, "gradient_clipping": 1.0,
              "prescale_gradients": true, "gradient_predivide_factor": 2.0, "steps_per_print": 5, "wall_clock_breakdown": true,
              "communication_data_type": "fp32",
              "fp16": { "enabled": true, "loss_scale": 0, "initial_scale_power": 12, "loss_scale_window": 500, "hysteresis": 3,
                        "consecutive_hysteresis": true, "min_loss_scale": 0.5 },
              "optimizer": { "type": "SGD", "params": { "lr": 0.1, "momentum": 0.9, "nesterov": true, "weight_decay": 1e-4 } },
              "scheduler": { "type": "WarmupDecayLR", "params": { "warmup_min_lr": 0, "warmup_max_lr": 0.1, "warmup_num_steps": 10,
                             "total_num_steps": 100, "warmup_type": "linear" } },
              "zero_optimization": { "stage": 0, "reduce_bucket_size": 25000000, "contiguous_gradients": true }
            }
            """);
        Assert.AreEqual(8, options.TrainMicroBatchSizePerGpu);
        Assert.AreEqual(4, options.GradientAccumulationSteps);
        Assert.AreEqual(1.0, options.GradientClipping);
        Assert.IsTrue(options.PrescaleGradients);
        Assert.AreEqual(2.0, options.GradientPredivideFactor);
        Assert.AreEqual(5, options.StepsPerPrint);
        Assert.IsTrue(options.WallClockBreakdown);
        Assert.AreEqual(ZeroPrecision.Fp16, options.Precision);
        Assert.AreEqual(12, options.Fp16.InitialScalePower);
        Assert.AreEqual(500, options.Fp16.LossScaleWindow);
        Assert.AreEqual(3, options.Fp16.Hysteresis);
        Assert.IsTrue(options.Fp16.ConsecutiveHysteresis);
        Assert.AreEqual(0.5, options.Fp16.MinLossScale);
        Assert.AreEqual(ZeroOptimizer.Sgd, options.Optimizer.Type);
        Assert.AreEqual(0.1, options.Optimizer.LearningRate);
        Assert.AreEqual(0.9, options.Optimizer.Momentum);
        Assert.IsTrue(options.Optimizer.Nesterov);
        Assert.AreEqual(1e-4, options.Optimizer.WeightDecay);
        var schedule = (WarmupDecayLR)options.Scheduler!;
        Assert.AreEqual(0.1, schedule.WarmupMaxLR);
        Assert.AreEqual(10, schedule.WarmupNumSteps);
        Assert.AreEqual(100, schedule.TotalNumSteps);
        Assert.AreEqual(WarmupType.Linear, schedule.Type);
        Assert.AreEqual(25_000_000, options.ZeroOptimization.ReduceBucketSize);
        Assert.AreEqual(0, options.ConfigWarnings.Count, string.Join("; ", options.ConfigWarnings));
    }

    [TestMethod]
    public void AutoValuesAreLeftToTheTrainer()
    {
        var options = DeepSpeedOptions.FromDeepSpeedConfig("""
            {
              "train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto",
              "gradient_clipping": "auto", "bf16": { "enabled": true },
              "optimizer": { "type": "AdamW", "params": { "lr": "auto", "betas": "auto", "eps": "auto", "weight_decay": "auto" } },
              "scheduler": { "type": "WarmupLR", "params": { "warmup_min_lr": "auto", "warmup_max_lr": "auto", "warmup_num_steps": "auto" } }
            }
            """);
        Assert.IsNull(options.TrainBatchSize);
        Assert.IsNull(options.TrainMicroBatchSizePerGpu);
        Assert.IsNull(options.GradientAccumulationSteps);
        Assert.AreEqual(ZeroPrecision.Bf16, options.Precision);
        Assert.IsNull(options.Optimizer.LearningRate);
        Assert.IsNull(options.Optimizer.Beta1);
        Assert.IsNull(((WarmupLR)options.Scheduler!).WarmupMaxLR);
        // "auto" leaves the warm-up to the trainer (its WarmupRatio of the run); left out, it is DeepSpeed's 1000.
        Assert.IsNull(((WarmupLR)options.Scheduler!).WarmupNumSteps);
        Assert.AreEqual(1000, ((WarmupLR)DeepSpeedOptions.FromDeepSpeedConfig("""{ "scheduler": { "type": "WarmupLR" } }""").Scheduler!).WarmupNumSteps);
    }

    [TestMethod]
    public void AdamMeansAdamWUnlessAdamWModeIsOff()
    {
        Assert.AreEqual(ZeroOptimizer.AdamW, DeepSpeedOptions.FromDeepSpeedConfig("""{ "optimizer": { "type": "Adam", "params": { "lr": 0.001 } } }""").Optimizer.Type);
        Assert.AreEqual(ZeroOptimizer.Adam, DeepSpeedOptions.FromDeepSpeedConfig("""{ "optimizer": { "type": "Adam", "params": { "adam_w_mode": false } } }""").Optimizer.Type);
        Assert.AreEqual(ZeroOptimizer.AdamW, DeepSpeedOptions.FromDeepSpeedConfig("""{ "optimizer": { "type": "AdamW" } }""").Optimizer.Type);
    }

    [TestMethod]
    public void BatchSizesInferTheThirdAndRejectInconsistentTriples()
    {
        Assert.AreEqual(new BatchSizes(64, 4, 8), BatchSizes.Resolve(64, 4, null, 2));
        Assert.AreEqual(new BatchSizes(64, 8, 4), BatchSizes.Resolve(64, null, 4, 2));
        Assert.AreEqual(new BatchSizes(64, 8, 4), BatchSizes.Resolve(null, 8, 4, 2));
        Assert.AreEqual(new BatchSizes(64, 32, 1), BatchSizes.Resolve(64, null, null, 2));
        Assert.AreEqual(new BatchSizes(16, 8, 1), BatchSizes.Resolve(null, 8, null, 2));
        var inferred = Assert.ThrowsExactly<ArgumentException>(() => BatchSizes.Resolve(32, 3, null, 2));
        StringAssert.Contains(inferred.Message, "32 != 3 * 5 * 2");
        var given = Assert.ThrowsExactly<ArgumentException>(() => BatchSizes.Resolve(32, 4, 2, 2));
        StringAssert.Contains(given.Message, "32 != 4 * 2 * 2");
        Assert.ThrowsExactly<ArgumentException>(() => BatchSizes.Resolve(null, null, 4, 2));
    }

    [TestMethod]
    public void StagesOtherThanZeroAreRejected()
    {
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => DeepSpeedOptions.FromDeepSpeedConfig("""{ "zero_optimization": { "stage": 2 } }"""));
        StringAssert.Contains(error.Message, "zero_optimization.stage");
        StringAssert.Contains(error.Message, "stage 0");
        var offload = Assert.ThrowsExactly<InvalidDataException>(() =>
            DeepSpeedOptions.FromDeepSpeedConfig("""{ "zero_optimization": { "stage": 0, "offload_optimizer": { "device": "cpu" } } }"""));
        StringAssert.Contains(offload.Message, "zero_optimization.offload_optimizer");
    }

    [TestMethod]
    public void WrongTypesNameTheJsonPath()
    {
        (string Json, string Expected)[] cases =
        {
            ("""{ "fp16": { "loss_scale_window": "abc" } }""", "fp16.loss_scale_window: expected integer, got \"abc\""),
            ("""{ "fp16": { "enabled": 1 } }""", "fp16.enabled: expected true or false, got 1"),
            ("""{ "train_batch_size": 3.5 }""", "train_batch_size: expected integer, got 3.5"),
            ("""{ "optimizer": { "type": "Lamb" } }""", "optimizer.type: expected \"Adam\", \"AdamW\" or \"SGD\", got \"Lamb\""),
            ("""{ "optimizer": { "params": { "betas": [0.9] } } }""", "optimizer.params.betas: expected an array of two numbers"),
            ("""{ "scheduler": { "type": "Cyclic" } }""", "scheduler.type: expected one of \"WarmupLR\""),
            ("""{ "scheduler": { "type": "WarmupLR", "params": { "warmup_type": "cosine" } } }""", "scheduler.params.warmup_type: expected \"log\" or \"linear\""),
            ("""{ "scheduler": { "type": "OneCycle", "params": { "cycle_max_lr": 0.1 } } }""", "scheduler.params.cycle_min_lr: required by OneCycle"),
            ("""{ "zero_optimization": [] }""", "zero_optimization: expected an object, got an array"),
            ("""{ "fp16": { "enabled": true }, "bf16": { "enabled": true } }""", "only one of fp16 and bf16"),
            ("""{ "communication_data_type": "int8" }""", "communication_data_type: expected \"fp32\", \"fp16\" or \"bf16\", got \"int8\""),
            ("""{ "train_batch_size": 32, """, "is not valid JSON"),
        };
        foreach (var (json, expected) in cases)
        {
            var error = Assert.ThrowsExactly<InvalidDataException>(() => DeepSpeedOptions.FromDeepSpeedConfig(json), json);
            StringAssert.Contains(error.Message, expected, json);
        }
        var range = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => DeepSpeedOptions.FromDeepSpeedConfig("""{ "fp16": { "hysteresis": 0 } }"""));
        StringAssert.Contains(range.Message, "DeepSpeedOptions.Fp16.Hysteresis is 0");
    }

    [TestMethod]
    public void UnknownKeysAreListedAsWarnings()
    {
        var options = DeepSpeedOptions.FromDeepSpeedConfig("""
            { "train_batch_size": 32, "wandb": { "enabled": true }, "fp16": { "enabled": false, "auto_cast": false },
              "scheduler": { "type": "WarmupLR", "params": { "warmup_num_steps": 10, "total_num_steps": 100 } } }
            """);
        Assert.AreEqual(1, options.ConfigWarnings.Count);
        StringAssert.Contains(options.ConfigWarnings[0], "wandb, fp16.auto_cast, scheduler.params.total_num_steps");
    }

    [TestMethod]
    public void CommunicationDataTypeIsRead()
    {
        Assert.AreEqual(ZeroPrecision.Bf16, DeepSpeedOptions.FromDeepSpeedConfig("""{ "communication_data_type": "bf16" }""").CommunicationDataType);
        Assert.AreEqual(ZeroPrecision.Fp16, DeepSpeedOptions.FromDeepSpeedConfig("""{ "communication_data_type": "FP16" }""").CommunicationDataType);
        var options = DeepSpeedOptions.FromDeepSpeedConfig("""{ "train_batch_size": 8 }""");
        Assert.IsNull(options.CommunicationDataType);
        Assert.AreEqual(0, options.ConfigWarnings.Count);
    }

    [TestMethod]
    public void GradientAccumulationTypeIsReadAndDefaultsAsDeepSpeedsStageZero()
    {
        var bf16 = DeepSpeedOptions.FromDeepSpeedConfig("""{ "bf16": { "enabled": true }, "data_types": { "grad_accum_dtype": "bf16" } }""");
        Assert.AreEqual(ZeroPrecision.Bf16, bf16.GradientAccumulationDataType);
        Assert.AreEqual(0, bf16.ConfigWarnings.Count);
        Assert.AreEqual(ZeroPrecision.Fp16, DeepSpeedOptions.FromDeepSpeedConfig("""{ "fp16": { "enabled": true }, "data_types": { "grad_accum_dtype": "half" } }""").GradientAccumulationDataType);
        Assert.AreEqual(ZeroPrecision.Fp32, DeepSpeedOptions.FromDeepSpeedConfig("""{ "bf16": { "enabled": true }, "data_types": { "grad_accum_dtype": "float32" } }""").GradientAccumulationDataType);
        Assert.IsNull(DeepSpeedOptions.FromDeepSpeedConfig("""{ "data_types": { "grad_accum_dtype": null } }""").GradientAccumulationDataType);

        // Unset: fp32 under bf16 (DeepSpeed's BF16_Optimizer), the model's type otherwise (its FP16_Optimizer).
        var sgd = new OptimizerSettings(ZeroOptimizer.Sgd, 0.1, 0.9, 0.999, 1e-8, 0, 0);
        Assert.IsTrue(EngineSettings.Fp32(sgd).AccumulatesInFp32);
        Assert.IsTrue((EngineSettings.Fp32(sgd) with { Precision = ZeroPrecision.Bf16 }).AccumulatesInFp32);
        Assert.IsFalse((EngineSettings.Fp32(sgd) with { Precision = ZeroPrecision.Fp16 }).AccumulatesInFp32);
        Assert.IsFalse((EngineSettings.Fp32(sgd) with { Precision = ZeroPrecision.Bf16, GradientAccumulationDataType = ZeroPrecision.Bf16 }).AccumulatesInFp32);
        Assert.IsTrue((EngineSettings.Fp32(sgd) with { Precision = ZeroPrecision.Fp16, GradientAccumulationDataType = ZeroPrecision.Fp32 }).AccumulatesInFp32);

        var badType = Assert.ThrowsExactly<InvalidDataException>(() => DeepSpeedOptions.FromDeepSpeedConfig("""{ "data_types": { "grad_accum_dtype": "int8" } }"""));
        StringAssert.Contains(badType.Message, "data_types.grad_accum_dtype: expected \"fp32\", \"fp16\" or \"bf16\", got \"int8\"");
        // Gradients of a bf16 model cannot accumulate in fp16, nor an fp32 model's in 16 bits.
        foreach (var json in new[] { """{ "bf16": { "enabled": true }, "data_types": { "grad_accum_dtype": "fp16" } }""", """{ "data_types": { "grad_accum_dtype": "bf16" } }""" })
        {
            var mismatch = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => DeepSpeedOptions.FromDeepSpeedConfig(json), json);
            StringAssert.Contains(mismatch.Message, "DeepSpeedOptions.GradientAccumulationDataType (data_types.grad_accum_dtype) is", json);
            StringAssert.Contains(mismatch.Message, "expected null, Fp32 or the model's precision", json);
        }
    }

    [TestMethod]
    public void AMissingFileIsNamed()
    {
        var error = Assert.ThrowsExactly<FileNotFoundException>(() => DeepSpeedOptions.FromDeepSpeedConfig("no/such/ds_config.json"));
        StringAssert.Contains(error.Message, "no/such/ds_config.json");
    }

    // Found by ReaderFuzzTests: an unpaired surrogate escape parses, then GetString or a key's Name threw
    // InvalidOperationException, which named neither the file nor the key.
    [TestMethod]
    [DataRow("""{ "optimizer": { "type": "\ud800" } }""", "optimizer.type: the string \"\\ud800\" is not valid text")]
    [DataRow("""{ "zero_optimization": { "offload_param": { "device": "\udc00x" } } }""", "zero_optimization.offload_param.device: the string")]
    [DataRow("""{ "fp16": { "\ud800": 1 } }""", "fp16: key 0 of the object (\"\\ud800\": 1) is not valid text")]
    public void AnUnpairedSurrogateEscapeIsNamedWithItsPath(string json, string expected)
    {
        using var folder = new TempFolder("zero-ds-config-");
        string path = folder.Combine("ds_config.json");
        File.WriteAllText(path, json);
        var error = Assert.ThrowsExactly<InvalidDataException>(() => DeepSpeedOptions.FromDeepSpeedConfig(path));
        StringAssert.Contains(error.Message, path);
        StringAssert.Contains(error.Message, expected);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Microsoft.ML.Zero.sln")))
                return dir.FullName;
        throw new DirectoryNotFoundException("The tests run from inside the repository.");
    }
}
