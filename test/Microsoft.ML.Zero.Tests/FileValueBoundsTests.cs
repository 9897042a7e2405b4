using System.Text.Json.Nodes;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// Values read from files (a Hugging Face config.json and vocab.txt, a ds_config) and batch sizes are bounded: a value
/// out of range is an error naming the file or option, the key, the value and what was expected.
/// </summary>
[TestClass]
public sealed class FileValueBoundsTests
{
    // MiniLM's config.json, the keys this library reads.
    private static JsonObject MiniLmConfig() => new()
    {
        ["model_type"] = "bert", ["vocab_size"] = 30522, ["hidden_size"] = 384, ["num_hidden_layers"] = 6, ["num_attention_heads"] = 12,
        ["intermediate_size"] = 1536, ["hidden_act"] = "gelu", ["hidden_dropout_prob"] = 0.1, ["attention_probs_dropout_prob"] = 0.1,
        ["max_position_embeddings"] = 512, ["type_vocab_size"] = 2, ["layer_norm_eps"] = 1e-12, ["pad_token_id"] = 0,
    };

    private static InvalidDataException ConfigError(string key, JsonNode value)
    {
        var config = MiniLmConfig();
        config[key] = value;
        return Assert.ThrowsExactly<InvalidDataException>(() => BertConfig.Parse(config.ToJsonString(), "config.json"), $"{key} = {value.ToJsonString()}");
    }

    [TestMethod]
    public void MiniLmsConfigIsWithinTheBounds() => Assert.AreEqual(384, BertConfig.Parse(MiniLmConfig().ToJsonString(), "config.json").HiddenSize);

    [TestMethod]
    [DataRow("hidden_dropout_prob", 1.0)]
    [DataRow("hidden_dropout_prob", -0.1)]
    [DataRow("attention_probs_dropout_prob", 1.5)]
    public void DropoutOutsideZeroToOneIsRejected(string key, double value)
    {
        var error = ConfigError(key, value);
        StringAssert.Contains(error.Message, "'config.json'");
        StringAssert.Contains(error.Message, $"'{key}' is {JsonValue.Create(value).ToJsonString()}");
        StringAssert.Contains(error.Message, "[0, 1)");
    }

    [TestMethod]
    [DataRow("vocab_size", 1 << 25, "at most 16777216")]
    [DataRow("hidden_size", 131072, "at most 65536")]
    [DataRow("num_hidden_layers", 2000, "at most 1024")]
    [DataRow("intermediate_size", 2_000_000, "at most 1048576")]
    [DataRow("max_position_embeddings", 2_097_152, "at most 1048576")]
    [DataRow("type_vocab_size", 2_097_152, "at most 1048576")]
    [DataRow("hidden_size", 0, "positive integer")]
    [DataRow("num_attention_heads", -12, "positive integer")]
    public void SizesHaveSaneLimits(string key, int value, string expected)
    {
        var config = MiniLmConfig();
        if (key == "hidden_size" && value > 0)
            config["num_attention_heads"] = 16; // keeps hidden_size a multiple of the heads
        config[key] = value;
        var error = Assert.ThrowsExactly<InvalidDataException>(() => BertConfig.Parse(config.ToJsonString(), "config.json"));
        StringAssert.Contains(error.Message, $"'{key}' is {value}");
        StringAssert.Contains(error.Message, expected);
    }

    [TestMethod]
    [DataRow(768)] // more heads than hidden units
    [DataRow(5)]
    public void HiddenSizeMustBeAMultipleOfTheHeads(int heads)
    {
        var error = ConfigError("num_attention_heads", heads);
        StringAssert.Contains(error.Message, $"hidden_size 384 is not a multiple of num_attention_heads {heads}");
    }

    [TestMethod]
    public void PadTokenMustBeAVocabularyId()
    {
        var error = ConfigError("pad_token_id", 30522);
        StringAssert.Contains(error.Message, "'pad_token_id' is 30522");
        StringAssert.Contains(error.Message, "below vocab_size (30522)");
    }

    // A checkpoint folder with a small config.json, the given vocab.txt lines and an (unread) weights file.
    private static TempFolder Checkpoint(int vocabSize, int vocabLines)
    {
        var folder = new TempFolder("zero-bounds-");
        var config = MiniLmConfig();
        config["vocab_size"] = vocabSize;
        File.WriteAllText(folder.Combine("config.json"), config.ToJsonString());
        string[] special = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
        File.WriteAllLines(folder.Combine("vocab.txt"), Enumerable.Range(0, vocabLines).Select(i => i < special.Length ? special[i] : $"token{i}"));
        File.WriteAllBytes(folder.Combine("model.safetensors"), Array.Empty<byte>());
        return folder;
    }

    [TestMethod]
    public void AVocabularyLargerThanVocabSizeIsRejected()
    {
        using var folder = Checkpoint(vocabSize: 8, vocabLines: 9);
        var error = Assert.ThrowsExactly<InvalidDataException>(() => BertCheckpoint.Open(folder.Path));
        StringAssert.Contains(error.Message, folder.Combine("vocab.txt"));
        StringAssert.Contains(error.Message, "9 tokens");
        StringAssert.Contains(error.Message, "vocab_size is 8");
    }

    [TestMethod]
    public void AVocabularySmallerThanVocabSizeIsAccepted()
    {
        // Hugging Face allows an embedding with more rows than the tokenizer has tokens (some models pad vocab_size).
        using var smaller = Checkpoint(vocabSize: 16, vocabLines: 9);
        Assert.AreEqual(16, BertCheckpoint.Open(smaller.Path).Config.VocabSize);
        using var equal = Checkpoint(vocabSize: 9, vocabLines: 9);
        Assert.AreEqual(9, BertCheckpoint.Open(equal.Path).Config.VocabSize);
    }

    [TestMethod]
    [DataRow("lr")]
    [DataRow("eps")]
    [DataRow("weight_decay")]
    [DataRow("momentum")]
    public void ANumberTooLargeForADoubleNamesItsKey(string key)
    {
        // JSON has no infinity; 1e999 is the way one reaches a reader.
        var error = Assert.ThrowsExactly<InvalidDataException>(() =>
            DeepSpeedOptions.FromDeepSpeedConfig($$"""{ "optimizer": { "type": "SGD", "params": { "{{key}}": 1e999 } } }"""));
        StringAssert.Contains(error.Message, $"optimizer.params.{key}: expected a finite number, got 1e999");
    }

    [TestMethod]
    public void OptimizerValuesMustBeFinite()
    {
        (string Name, Action<ZeroOptimizerOptions> Set)[] cases =
        {
            ("LearningRate", o => o.LearningRate = double.PositiveInfinity),
            ("Beta1", o => o.Beta1 = double.NaN),
            ("Beta2", o => o.Beta2 = double.PositiveInfinity),
            ("Epsilon", o => o.Epsilon = double.PositiveInfinity),
            ("WeightDecay", o => o.WeightDecay = double.PositiveInfinity),
            ("Momentum", o => o.Momentum = double.PositiveInfinity),
            ("Dampening", o => o.Dampening = double.PositiveInfinity),
        };
        foreach (var (name, set) in cases)
        {
            var options = new DeepSpeedOptions();
            set(options.Optimizer);
            var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => options.Validate(), name);
            StringAssert.Contains(error.Message, $"DeepSpeedOptions.Optimizer.{name} is ", name);
        }
    }

    [TestMethod]
    public void ScheduleRatesMustBeFinite()
    {
        (string Name, LearningRateSchedule Schedule)[] cases =
        {
            ("WarmupMaxLR", new WarmupLR { WarmupMaxLR = double.PositiveInfinity }),
            ("WarmupMinLR", new WarmupDecayLR { WarmupMinLR = double.PositiveInfinity }),
            ("CycleMaxLR", new OneCycle { CycleMinLR = 0, CycleMaxLR = double.PositiveInfinity }),
        };
        foreach (var (name, schedule) in cases)
        {
            var options = new DeepSpeedOptions { Scheduler = schedule };
            var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => options.Validate(), name);
            StringAssert.Contains(error.Message, $"DeepSpeedOptions.Scheduler.{name} is ", name);
            StringAssert.Contains(error.Message, "finite", name);
        }
    }

    [TestMethod]
    public void TrainerOptimizerValuesMustBeFinite()
    {
        var mlContext = new MLContext(seed: 0);
        (string Name, Action<ZeroTrainerOptions> Set)[] cases =
        {
            ("Epsilon", o => o.Epsilon = double.PositiveInfinity),
            ("WeightDecay", o => o.WeightDecay = double.PositiveInfinity),
            ("Momentum", o => o.Momentum = double.PositiveInfinity),
        };
        foreach (var (name, set) in cases)
        {
            var options = new ZeroTrainerOptions();
            set(options);
            var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().Trainer(options), name);
            StringAssert.Contains(error.Message, $"ZeroTrainerOptions.{name} is ", name);
        }
        var text = new ZeroTextClassificationOptions { CheckpointPath = "unused", Sentence1ColumnName = "Text", WeightDecay = double.PositiveInfinity };
        var textError = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().TextClassification(text));
        StringAssert.Contains(textError.Message, "ZeroTextClassificationOptions.WeightDecay is ");
    }

    [TestMethod]
    [DataRow("..")]
    [DataRow(".")]
    [DataRow("runs/one")]
    [DataRow("runs\\one")]
    [DataRow("")]
    public void AJobNameIsOneFolderName(string jobName)
    {
        foreach (string block in new[] { "tensorboard", "csv_monitor" })
        {
            string json = $$"""{ "{{block}}": { "enabled": true, "job_name": {{JsonValue.Create(jobName).ToJsonString()}} } }""";
            var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => DeepSpeedOptions.FromDeepSpeedConfig(json), json);
            StringAssert.Contains(error.Message, block == "tensorboard" ? "DeepSpeedOptions.TensorBoard.JobName is " : "DeepSpeedOptions.CsvMonitor.JobName is ", json);
            StringAssert.Contains(error.Message, "one folder name", json);
        }
    }

    [TestMethod]
    public void BatchSizesWhoseProductOverflowsAreNamed()
    {
        var micro = Assert.ThrowsExactly<ArgumentException>(() => BatchSizes.Resolve(null, int.MaxValue, null, 2));
        StringAssert.Contains(micro.Message, "train_micro_batch_size_per_gpu 2147483647 x gradient_accumulation_steps 1 x world size 2 = 4294967294");
        StringAssert.Contains(micro.Message, "at most 2147483647");
        var accumulation = Assert.ThrowsExactly<ArgumentException>(() => BatchSizes.Resolve(null, 1 << 16, 1 << 16, 1));
        StringAssert.Contains(accumulation.Message, "train_micro_batch_size_per_gpu 65536 x gradient_accumulation_steps 65536 x world size 1 = 4294967296");
        // The largest representable batch is fine.
        Assert.AreEqual(new BatchSizes(int.MaxValue, int.MaxValue, 1), BatchSizes.Resolve(null, int.MaxValue, null, 1));
    }

    [TestMethod]
    public void AMicroBatchLargerThanTheDataIsOneStep()
    {
        var plan = new ShardPlan(150, 1, 0, int.MaxValue, seed: 0);
        Assert.AreEqual(1, plan.StepsPerEpoch);
        Assert.AreEqual(150, plan.GlobalRowsInStep(0));
        Assert.AreEqual(0, plan.GlobalRowsInStep(1));
        Assert.AreEqual((0, 150), plan.MicroBatch(0, 150));
        Assert.AreEqual((150, 0), plan.MicroBatch(1, 150));
    }

    [TestMethod]
    public void BatchSizeIntMaxValueTrainsOnOneRankAndIsRejectedOnTwo()
    {
        var mlContext = new MLContext(seed: 0);
        var log = TrainerLog.Capture(mlContext);
        var data = IrisFixtures.Prepared(mlContext);
        mlContext.Zero().Trainer(new ZeroTrainerOptions { BatchSize = int.MaxValue, MaxEpoch = 2 }).Fit(data).Dispose();
        Assert.IsTrue(log.Any(line => line.Contains(": 1 optimizer steps per epoch.")), string.Join("\n", log));

        var error = Assert.ThrowsExactly<ArgumentException>(() =>
            mlContext.Zero().Trainer(new ZeroTrainerOptions { BatchSize = int.MaxValue, WorldSize = 2, MaxEpoch = 1 }).Fit(data));
        StringAssert.Contains(error.Message, "train_micro_batch_size_per_gpu 2147483647 x gradient_accumulation_steps 1 x world size 2");
    }
}
