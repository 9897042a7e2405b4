using System.Diagnostics;
using Microsoft.ML.Data;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.Tests;

[TestClass]
public sealed class BertTests
{
    [TestMethod]
    public void Bf16AttentionOnTheCpuComputesWhatTheFusedKernelDoes()
    {
        // bf16 attention on the CPU is computed unfused (softmax(QK^T / sqrt(d) + mask) V); fp32 goes through libtorch's
        // scaled_dot_product_attention. Same weights, same inputs: the outputs agree to bf16's precision, and padded
        // keys have no influence at all.
        TorchRuntimeForTests.Load();
        manual_seed(5);
        var config = new Microsoft.ML.Zero.Models.Bert.BertConfig(100, 64, 1, 4, 128, "gelu", 0, 0, 32, 2, 1e-12, 0);
        using var fused = new Microsoft.ML.Zero.Models.Bert.BertSelfAttention(config);
        using var unfused = new Microsoft.ML.Zero.Models.Bert.BertSelfAttention(config);
        unfused.load_state_dict(fused.state_dict());
        TorchSharp.ModuleExtensionMethods.to(unfused, ScalarType.BFloat16);
        var hidden = randn(3, 10, 64);
        var mask = ones(3, 1, 1, 10, dtype: ScalarType.Bool);
        mask[1, .., .., TensorIndex.Slice(6)] = tensor(false);   // row 1 has 6 real tokens
        mask[2, .., .., TensorIndex.Slice(3)] = tensor(false);   // row 2 has 3

        using var _ = no_grad();
        var expected = fused.call(hidden, mask);
        var actual = unfused.call(hidden.to(ScalarType.BFloat16), mask).to(ScalarType.Float32);
        double error = (actual - expected).abs().max().item<float>(), size = expected.abs().max().item<float>();
        Assert.IsTrue(error < 0.02 * size, $"max |bf16 unfused - fp32 fused| = {error} against max |output| = {size}");

        // An additive mask (0 to attend, -inf not) goes to the fused kernel, and means the same.
        var additive = zeros(3, 1, 1, 10, dtype: ScalarType.BFloat16).masked_fill_(mask.logical_not(), double.NegativeInfinity);
        var throughAdditive = unfused.call(hidden.to(ScalarType.BFloat16), additive).to(ScalarType.Float32);
        double additiveError = (throughAdditive - expected).abs().max().item<float>();
        Assert.IsTrue(additiveError < 0.02 * size, $"max |bf16 with an additive mask - fp32 fused| = {additiveError}");

        var changedPadding = hidden.clone();
        changedPadding[2, TensorIndex.Slice(3)] = randn(7, 64);
        var again = unfused.call(changedPadding.to(ScalarType.BFloat16), mask).to(ScalarType.Float32);
        CollectionAssert.AreEqual(actual[2, TensorIndex.Slice(0, 3)].data<float>().ToArray(), again[2, TensorIndex.Slice(0, 3)].data<float>().ToArray(),
            "padded keys changed the real tokens' outputs");
    }

    [TestMethod]
    [TestCategory("bert")]
    public void ConvertedMiniLmGivesTheKnownSentenceSimilarity()
    {
        TorchRuntimeForTests.Load();
        var checkpoint = BertCheckpoint.Open(MiniLm.Directory());
        using var model = new BertModel(checkpoint.Config, new Generator(0));
        checkpoint.LoadInto(model);
        model.eval();
        var encoder = new BertTextEncoder(File.ReadAllBytes(checkpoint.VocabPath), checkpoint.LowerCase, 128);

        Tensor Embed(string text)
        {
            var (ids, types) = encoder.Encode(text, null);
            var batch = BertCollator.Collate(new[] { (ids, types) }, 0, 1, encoder.PaddingId);
            return model.forward(batch).Sequence.mean(new long[] { 1 }).squeeze(0); // mean pooling, as sentence-transformers does
        }

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        double cosine = nn.functional.cosine_similarity(Embed("A man is eating food."), Embed("A man is eating a piece of bread."), dim: 0).item<float>();
        Assert.AreEqual(0.755, cosine, 0.005);
        double unrelated = nn.functional.cosine_similarity(Embed("A man is eating food."), Embed("The stock market fell sharply today."), dim: 0).item<float>();
        Assert.IsTrue(unrelated < 0.3, $"unrelated sentences: {unrelated:F3}");
    }

    [TestMethod]
    [TestCategory("bert")]
    public void FineTunedMiniLmClassifiesSentimentOnTwoRanksInAutoPrecisionAndReloads()
    {
        var mlContext = new MLContext(seed: 0);
        var split = mlContext.Data.TrainTestSplit(mlContext.Data.LoadFromEnumerable(SentimentData.All()), testFraction: 0.2, seed: 0);
        var options = new ZeroTextClassificationOptions
        {
            CheckpointPath = MiniLm.Directory(), Sentence1ColumnName = "Text", WorldSize = 2, BatchSize = 16, MaxEpoch = 2,
            LearningRate = 1e-4, MaxSequenceLength = 64, // no DeepSpeed settings: precision Auto, bf16 only where the CPU computes it natively
        };
        var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label")
            .Append(mlContext.Zero().TextClassification(options))
            .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

        var log = TrainerLog.Capture(mlContext);
        var watch = Stopwatch.StartNew();
        var model = pipeline.Fit(split.TrainSet);
        string choice = log.Single(line => line.StartsWith("precision auto -> ", StringComparison.Ordinal));
        Console.WriteLine(choice);
        StringAssert.Contains(log.Single(line => line.Contains("accumulation step(s) = batch", StringComparison.Ordinal)),
            choice.StartsWith("precision auto -> bf16", StringComparison.Ordinal) ? ", Bf16, " : ", Fp32, ");
        var scored = model.Transform(split.TestSet);
        var metrics = mlContext.MulticlassClassification.Evaluate(scored);
        Console.WriteLine($"accuracy {metrics.MicroAccuracy:F4} in {watch.Elapsed}");
        Assert.IsTrue(metrics.MicroAccuracy >= 0.85, $"test accuracy {metrics.MicroAccuracy:F4}; FeaturizeText + SDCA gets 0.784");

        using var folder = new TempFolder("zero-bert-");
        string path = folder.Combine("model.zip");
        mlContext.Model.Save(model, split.TrainSet.Schema, path);
        var loaded = mlContext.Model.Load(path, out _);
        var before = scored.GetColumn<VBuffer<float>>("Score").Take(40).Select(v => v.DenseValues().ToArray()).ToArray();
        var after = loaded.Transform(split.TestSet).GetColumn<VBuffer<float>>("Score").Take(40).Select(v => v.DenseValues().ToArray()).ToArray();
        for (int i = 0; i < before.Length; i++)
            CollectionAssert.AreEqual(before[i], after[i], $"row {i}");

        var engine = mlContext.Model.CreatePredictionEngine<SentimentRow, SentimentPrediction>(loaded);
        Assert.AreEqual("1", engine.Predict(new SentimentRow { Text = "Absolutely wonderful, I loved every minute of it." }).PredictedLabel);
        Assert.AreEqual("0", engine.Predict(new SentimentRow { Text = "Terrible service and the food was cold." }).PredictedLabel);
    }
}

public sealed class SentimentPrediction
{
    public float[] Score { get; set; } = Array.Empty<float>();

    public string PredictedLabel { get; set; } = "";
}

internal static class TorchRuntimeForTests
{
    public static void Load() => TorchRuntime.EnsureLoaded();
}
