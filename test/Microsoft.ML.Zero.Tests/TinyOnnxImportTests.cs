using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.Tensors;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// The ONNX importer on a one-layer export small enough to build in the test (TinyOnnxBert): both layouts convert into
/// a folder that loads, and the faults the reader fuzz tests found are refused with InvalidDataException naming the
/// file and what is wrong, not an IndexOutOfRange or JSON writer error from deep inside.
/// </summary>
[TestClass]
public sealed class TinyOnnxImportTests
{
    private static (TempFolder Folder, string Onnx, string Vocab) Write(TinyOnnxBert.Layout layout)
    {
        var folder = new TempFolder("zero-tiny-onnx-");
        string onnx = folder.Combine("model.onnx"), vocab = folder.Combine("vocab.txt");
        File.WriteAllBytes(onnx, TinyOnnxBert.Model(layout));
        File.WriteAllLines(vocab, TinyOnnxBert.Vocabulary);
        return (folder, onnx, vocab);
    }

    private static InvalidDataException ConvertFails(TinyOnnxBert.Layout layout)
    {
        var (folder, onnx, vocab) = Write(layout);
        using (folder)
        {
            var error = Assert.ThrowsExactly<InvalidDataException>(() => OnnxBertImporter.ConvertToHuggingFaceFolder(onnx, vocab, folder.Combine("out")));
            StringAssert.Contains(error.Message, onnx);
            Assert.IsFalse(Directory.Exists(folder.Combine("out")), "nothing is written when the model cannot be read");
            return error;
        }
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void BothLayoutsConvertIntoAFolderThatLoads(bool decomposed)
    {
        TorchRuntime.EnsureLoaded();
        var (folder, onnx, vocab) = Write(new TinyOnnxBert.Layout { Decomposed = decomposed });
        using (folder)
        {
            OnnxBertImporter.ConvertToHuggingFaceFolder(onnx, vocab, folder.Combine("out"));
            var checkpoint = BertCheckpoint.Open(folder.Combine("out"));
            Assert.AreEqual(TinyOnnxBert.Hidden, checkpoint.Config.HiddenSize);
            Assert.AreEqual(TinyOnnxBert.Heads, checkpoint.Config.NumAttentionHeads);
            Assert.AreEqual(1e-12, checkpoint.Config.LayerNormEps, 1e-18);
            using var model = new BertModel(checkpoint.Config, new Generator(0));
            checkpoint.LoadInto(model);
        }
    }

    // Found by ReaderFuzzTests: List<string>[0] of an Add node with no output threw ArgumentOutOfRangeException.
    [TestMethod]
    public void AQueryAddWithoutAnOutputIsNamed()
    {
        var error = ConvertFails(new TinyOnnxBert.Layout { QueryAddHasOutput = false });
        StringAssert.Contains(error.Message, "an output of '/attention.self.query/Add'");
    }

    // Found by ReaderFuzzTests: a decomposed LayerNorm whose Sqrt has no input threw ArgumentOutOfRangeException.
    [TestMethod]
    public void ASqrtWithoutAnInputIsNamed()
    {
        var error = ConvertFails(new TinyOnnxBert.Layout { Decomposed = true, SqrtHasInput = false });
        StringAssert.Contains(error.Message, "the epsilon of the LayerNorm using 'embeddings.LayerNorm.weight'");
    }

    // Found by ReaderFuzzTests: an infinite epsilon reached Utf8JsonWriter, whose ArgumentException named no file.
    [TestMethod]
    [DataRow(false, float.PositiveInfinity, "/embeddings/LayerNorm/LayerNormalization")]
    [DataRow(false, float.NaN, "/embeddings/LayerNorm/LayerNormalization")]
    [DataRow(false, -1f, "/embeddings/LayerNorm/LayerNormalization")]
    [DataRow(true, float.NegativeInfinity, "/embeddings/LayerNorm/Add")]
    public void AnEpsilonThatIsNotAFiniteNonNegativeNumberIsNamed(bool decomposed, float epsilon, string node)
    {
        var error = ConvertFails(new TinyOnnxBert.Layout { Decomposed = decomposed, Epsilon = epsilon });
        StringAssert.Contains(error.Message, $"the LayerNorm epsilon of node '{node}' is {epsilon}; expected a finite number of 0 or more");
    }

    // Found reading the importer after the fuzz findings (the fuzzer would need two matching changes): word embeddings of
    // shape [8, 0] converted into a config.json with hidden_size 0, which failed only later, when the folder was opened.
    [TestMethod]
    public void AZeroHiddenSizeIsNamed()
    {
        var error = ConvertFails(new TinyOnnxBert.Layout { WordEmbeddingWidth = 0 });
        StringAssert.Contains(error.Message, "initializer 'embeddings.word_embeddings.weight' has shape [8,0]; its size 0 becomes a config.json size");
    }

    // Google.Protobuf decodes strings strictly (the hand-written reader it replaced substituted U+FFFD), so a graph name
    // that is not UTF-8 now fails the parse: as InvalidDataException naming the file, like every other parse failure.
    [TestMethod]
    public void AStringThatIsNotUtf8IsInvalidDataNamingTheFile()
    {
        using var folder = new TempFolder("zero-tiny-onnx-");
        string onnx = folder.Combine("model.onnx"), vocab = folder.Combine("vocab.txt");
        byte[] model = TinyOnnxBert.Fused();
        model[model.AsSpan().IndexOf("main_graph"u8)] = 0xFF;
        File.WriteAllBytes(onnx, model);
        File.WriteAllLines(vocab, TinyOnnxBert.Vocabulary);
        var error = Assert.ThrowsExactly<InvalidDataException>(() => OnnxBertImporter.ConvertToHuggingFaceFolder(onnx, vocab, folder.Combine("out")));
        StringAssert.Contains(error.Message, $"'{onnx}' is not a valid ONNX model");
    }
}
