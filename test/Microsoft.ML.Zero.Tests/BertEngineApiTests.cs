using Microsoft.ML.Zero.Models.Bert;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>The public BERT pieces an engine loop uses: a pretrained classifier and a batch tokenizer.</summary>
[TestClass]
public sealed class BertEngineApiTests
{
    [TestMethod]
    [TestCategory("bert")]
    public void APretrainedClassifierAndTokenizerScoreABatch()
    {
        string folder = MiniLm.Directory();
        var tokenizer = BertBatchTokenizer.FromPretrained(folder, maxSequenceLength: 16);
        using var model = BertClassifier.FromPretrained(folder, numLabels: 3);
        model.eval();
        using var scope = NewDisposeScope();
        var batch = tokenizer.Encode(new[] { "A man is eating food.", "Short." }, new[] { "A man is eating a piece of bread.", "Also short." });
        Assert.AreEqual(2L, batch.InputIds.shape[0]);
        Assert.IsTrue(batch.InputIds.shape[1] <= 16, "rows are truncated to the maximum length");
        Assert.AreEqual(101L, batch.InputIds[0, 0].item<long>(), "[CLS] first");
        Assert.IsTrue(batch.TokenTypeIds[0].data<long>().Contains(1L), "the second sentence has token type 1");
        Assert.IsFalse(batch.AttentionMask[1].data<bool>().All(real => real), "the shorter row is padded");
        using (no_grad())
            CollectionAssert.AreEqual(new long[] { 2, 3 }, model.call(batch).shape);
        Assert.AreEqual(3, model.ClassCount);

        var tooLong = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => BertBatchTokenizer.FromPretrained(folder, maxSequenceLength: 1024));
        StringAssert.Contains(tooLong.Message, "maxSequenceLength is 1024; the checkpoint's config.json allows at most max_position_embeddings = 512");
        var labels = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => BertClassifier.FromPretrained(folder, numLabels: 1));
        StringAssert.Contains(labels.Message, "numLabels is 1; expected at least 2");
        var pairs = Assert.ThrowsExactly<ArgumentException>(() => tokenizer.Encode(new[] { "a", "b" }, new[] { "c" }));
        StringAssert.Contains(pairs.Message, "1 second sentences for 2 texts");
    }
}
