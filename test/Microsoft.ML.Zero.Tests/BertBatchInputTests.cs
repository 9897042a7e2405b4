using static TorchSharp.torch;
using Microsoft.ML.Zero.Models.Bert;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// A <see cref="BertBatch"/> built by hand, as from a Hugging Face tokenizer's output: an int64 (or int32) 1/0 attention
/// mask means what a boolean one does, and tensors of the wrong type or shape are refused naming the field and what is
/// expected, before libtorch fails deep inside attention.
/// </summary>
[TestClass]
public sealed class BertBatchInputTests
{
    private const int MaxPositions = 32;

    // A small random BERT (vocabulary 100, hidden 64, 1 layer, 4 heads, 32 positions), no dropout.
    private static BertClassifier SmallModel()
    {
        TorchRuntimeForTests.Load();
        manual_seed(3);
        var model = new BertClassifier(new BertConfig(100, 64, 1, 4, 128, "gelu", 0, 0, MaxPositions, 2, 1e-12, 0), 2, new Generator(0));
        model.eval();
        return model;
    }

    // Two rows of 5 tokens; the second has 3 real tokens and 2 of padding.
    private static (Tensor Ids, Tensor Types, Tensor Mask) Inputs()
    {
        var ids = tensor(new long[] { 1, 5, 6, 7, 2, 1, 8, 2, 0, 0 }, new long[] { 2, 5 });
        var types = tensor(new long[] { 0, 0, 0, 1, 1, 0, 0, 0, 0, 0 }, new long[] { 2, 5 });
        var mask = tensor(new[] { true, true, true, true, true, true, true, true, false, false }, new long[] { 2, 5 });
        return (ids, types, mask);
    }

    private static float[] Logits(BertClassifier model, BertBatch batch)
    {
        using var _ = no_grad();
        return model.forward(batch).data<float>().ToArray();
    }

    [TestMethod]
    [DataRow(ScalarType.Int64)]
    [DataRow(ScalarType.Int32)]
    public void IntegerAttentionMasksMeanWhatBooleanOnesDo(ScalarType maskType)
    {
        using var scope = NewDisposeScope();
        using var model = SmallModel();
        var (ids, types, mask) = Inputs();
        var expected = Logits(model, new BertBatch(ids, types, mask));
        var actual = Logits(model, new BertBatch(ids, types, mask.to(maskType)));
        CollectionAssert.AreEqual(expected, actual, $"a {maskType} 1/0 mask");
    }

    [TestMethod]
    public void Int32IdsAndTokenTypesMeanWhatInt64OnesDo()
    {
        using var scope = NewDisposeScope();
        using var model = SmallModel();
        var (ids, types, mask) = Inputs();
        var expected = Logits(model, new BertBatch(ids, types, mask));
        var actual = Logits(model, new BertBatch(ids.to(ScalarType.Int32), types.to(ScalarType.Int32), mask.to(ScalarType.Int32)));
        CollectionAssert.AreEqual(expected, actual);
    }

    [TestMethod]
    public void WrongTypesAndShapesAreRefusedNamingTheFieldAndWhatIsExpected()
    {
        using var scope = NewDisposeScope();
        using var model = SmallModel();
        var (ids, types, mask) = Inputs();

        void Refused(BertBatch batch, params string[] expected)
        {
            var error = Assert.ThrowsExactly<ArgumentException>(() => model.forward(batch));
            foreach (string text in expected)
                StringAssert.Contains(error.Message, text);
        }

        Refused(new BertBatch(ids.to(ScalarType.Float32), types, mask), "InputIds", "Float32", "int64 or int32");
        Refused(new BertBatch(ids.reshape(10), types, mask), "InputIds", "[10]", "[rows, tokens]");
        Refused(new BertBatch(ids, types.to(ScalarType.Float32), mask), "TokenTypeIds", "Float32", "int64 or int32");
        Refused(new BertBatch(ids, types[.., ..4], mask), "TokenTypeIds", "[2, 4]", "[2, 5]");
        Refused(new BertBatch(ids, types, mask[.., ..4]), "AttentionMask", "[2, 4]", "[2, 5]");
        Refused(new BertBatch(ids, types, mask.to(ScalarType.Float32)), "AttentionMask", "Float32", "bool", "1/0");
        Refused(new BertBatch(ids[.., ..0], types[.., ..0], mask[.., ..0]), "InputIds", "[2, 0]", "at least one token");
        var longIds = zeros(1, MaxPositions + 1, dtype: ScalarType.Int64);
        Refused(new BertBatch(longIds, longIds, ones(1, MaxPositions + 1, dtype: ScalarType.Bool)), "33 tokens", "max_position_embeddings = 32");
    }
}
