using System.Buffers.Binary;
using System.Text.Json;
using Google.Protobuf;
using Microsoft.ML.Zero.Models.Bert;
using Onnx;

namespace Microsoft.ML.Zero.Tests;

[TestClass]
public sealed class OnnxBertImporterTests
{
    private const int Hidden = 384, Intermediate = 1536, Layers = 6;

    private static TempFolder? _scratchFolder;
    private static string _scratch = "";
    private static string _onnx = "", _vocab = "";

    [ClassInitialize]
    public static void ExtractOnnx(TestContext context)
    {
        _scratchFolder = new TempFolder("OnnxBertImporterTests-");
        _scratch = _scratchFolder.Path;
        (_onnx, _vocab) = MiniLm.ExtractResources(_scratch);
    }

    [ClassCleanup]
    public static void DeleteScratch() => _scratchFolder?.Dispose();

    /// <summary>Every tensor of a 6-layer MiniLM BertModel with its Hugging Face shape ([out, in] for Linear weights).</summary>
    private static Dictionary<string, long[]> ExpectedShapes()
    {
        var shapes = new Dictionary<string, long[]>
        {
            ["embeddings.word_embeddings.weight"] = new long[] { 30522, Hidden },
            ["embeddings.position_embeddings.weight"] = new long[] { 512, Hidden },
            ["embeddings.token_type_embeddings.weight"] = new long[] { 2, Hidden },
            ["embeddings.LayerNorm.weight"] = new long[] { Hidden },
            ["embeddings.LayerNorm.bias"] = new long[] { Hidden },
            ["pooler.dense.weight"] = new long[] { Hidden, Hidden },
            ["pooler.dense.bias"] = new long[] { Hidden },
        };
        for (int layer = 0; layer < Layers; layer++)
        {
            string prefix = $"encoder.layer.{layer}.";
            foreach (string linear in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense" })
            {
                shapes[prefix + linear + ".weight"] = new long[] { Hidden, Hidden };
                shapes[prefix + linear + ".bias"] = new long[] { Hidden };
            }

            shapes[prefix + "intermediate.dense.weight"] = new long[] { Intermediate, Hidden };
            shapes[prefix + "intermediate.dense.bias"] = new long[] { Intermediate };
            shapes[prefix + "output.dense.weight"] = new long[] { Hidden, Intermediate };
            shapes[prefix + "output.dense.bias"] = new long[] { Hidden };
            foreach (string norm in new[] { "attention.output.LayerNorm", "output.LayerNorm" })
            {
                shapes[prefix + norm + ".weight"] = new long[] { Hidden };
                shapes[prefix + norm + ".bias"] = new long[] { Hidden };
            }
        }

        return shapes;
    }

    /// <summary>A safetensors entry: shape and absolute byte range in the file.</summary>
    private sealed record Entry(long[] Shape, long Begin, long End);

    private static Dictionary<string, Entry> ReadHeader(string path)
    {
        using var stream = File.OpenRead(path);
        var length = new byte[8];
        stream.ReadExactly(length);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(length);
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        using var json = JsonDocument.Parse(header);
        var entries = new Dictionary<string, Entry>();
        foreach (var property in json.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__"))
        {
            Assert.AreEqual("F32", property.Value.GetProperty("dtype").GetString(), property.Name);
            var offsets = property.Value.GetProperty("data_offsets").EnumerateArray().Select(o => o.GetInt64()).ToArray();
            long start = 8 + headerLength;
            entries[property.Name] = new Entry(
                property.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray(), start + offsets[0], start + offsets[1]);
        }

        return entries;
    }

    private static float[] ReadTensor(string path, Entry entry)
    {
        var bytes = new byte[entry.End - entry.Begin];
        using var stream = File.OpenRead(path);
        stream.Position = entry.Begin;
        stream.ReadExactly(bytes);
        var values = new float[bytes.Length / sizeof(float)];
        for (int i = 0; i < values.Length; i++)
            values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * sizeof(float)));
        return values;
    }

    [TestMethod]
    public void ConvertedFolderHasMiniLmConfigVocabAndTensors()
    {
        string folder = MiniLm.Directory();
        CollectionAssert.AreEquivalent(
            new[] { "config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt" },
            Directory.GetFiles(folder).Select(Path.GetFileName).ToArray(),
            "only the four final files, no leftover temporary ones");

        using (var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json"))))
        {
            var root = config.RootElement;
            Assert.AreEqual("bert", root.GetProperty("model_type").GetString());
            Assert.AreEqual("BertModel", root.GetProperty("architectures")[0].GetString());
            Assert.AreEqual(30522, root.GetProperty("vocab_size").GetInt32());
            Assert.AreEqual(Hidden, root.GetProperty("hidden_size").GetInt32());
            Assert.AreEqual(Layers, root.GetProperty("num_hidden_layers").GetInt32());
            Assert.AreEqual(12, root.GetProperty("num_attention_heads").GetInt32());
            Assert.AreEqual(Intermediate, root.GetProperty("intermediate_size").GetInt32());
            Assert.AreEqual("gelu", root.GetProperty("hidden_act").GetString());
            Assert.AreEqual(512, root.GetProperty("max_position_embeddings").GetInt32());
            Assert.AreEqual(2, root.GetProperty("type_vocab_size").GetInt32());
            Assert.AreEqual(1e-12, root.GetProperty("layer_norm_eps").GetDouble());
            Assert.AreEqual(0, root.GetProperty("pad_token_id").GetInt32());
            Assert.AreEqual(0.1, root.GetProperty("hidden_dropout_prob").GetDouble());
            Assert.AreEqual(0.1, root.GetProperty("attention_probs_dropout_prob").GetDouble());
            Assert.AreEqual(0.02, root.GetProperty("initializer_range").GetDouble());
        }

        using (var tokenizer = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer_config.json"))))
            Assert.IsTrue(tokenizer.RootElement.GetProperty("do_lower_case").GetBoolean());

        string vocab = File.ReadAllText(Path.Combine(folder, "vocab.txt"));
        Assert.IsFalse(vocab.Contains('\r'), "no CR left from the CRLF source");
        string[] tokens = vocab.Split('\n');
        Assert.AreEqual(30522 + 1, tokens.Length, "30522 lines, each ended by LF");
        Assert.AreEqual("[PAD]", tokens[0]);
        Assert.AreEqual("", tokens[^1]);

        string weights = Path.Combine(folder, "model.safetensors");
        var header = ReadHeader(weights);
        var expected = ExpectedShapes();
        CollectionAssert.AreEquivalent(expected.Keys.ToArray(), header.Keys.ToArray());
        foreach (var (name, shape) in expected)
            CollectionAssert.AreEqual(shape, header[name].Shape, name);

        // The data ranges tile the file after the header exactly, one tensor after another.
        long position = header.Values.Min(e => e.Begin);
        foreach (var entry in header.Values.OrderBy(e => e.Begin))
        {
            Assert.AreEqual(position, entry.Begin);
            Assert.AreEqual(entry.Shape.Aggregate(1L, (n, d) => n * d) * sizeof(float), entry.End - entry.Begin);
            position = entry.End;
        }

        Assert.AreEqual(new FileInfo(weights).Length, position);
    }

    [TestMethod]
    public void LinearWeightsAreTransposedFromOnnx()
    {
        var graph = OnnxModelFile.Read(_onnx).Graph;
        var initializers = OnnxModelFile.Initializers(graph, _onnx);
        string weights = Path.Combine(MiniLm.Directory(), "model.safetensors");
        var header = ReadHeader(weights);

        // Non-square (intermediate) and square (query) layers: a missing transposition would go unseen in shapes only for the latter.
        foreach (string linear in new[] { "encoder.layer.0.intermediate.dense", "encoder.layer.3.attention.self.query" })
        {
            string bias = linear + ".bias";
            var add = graph.Node.Single(node => node.OpType == "Add" && node.Input.Contains(bias));
            var matMul = graph.Node.Single(node => node.OpType == "MatMul" && add.Input.Contains(node.Output[0]));
            var onnxWeight = initializers[matMul.Input[1]];
            float[] onnx = onnxWeight.ToFloats(_onnx);
            int inputs = (int)onnxWeight.Dims[0], outputs = (int)onnxWeight.Dims[1];

            var entry = header[linear + ".weight"];
            CollectionAssert.AreEqual(new long[] { outputs, inputs }, entry.Shape, linear);
            float[] converted = ReadTensor(weights, entry);
            for (int i = 0; i < outputs; i++)
                for (int j = 0; j < inputs; j++)
                    if (converted[i * inputs + j] != onnx[j * outputs + i])
                        Assert.Fail($"{linear}.weight[{i},{j}] = {converted[i * inputs + j]}, ONNX [{j},{i}] = {onnx[j * outputs + i]}");
        }

        // The pooler is a Gemm with transB=1 in the graph, so its weight is already [out, in] and is copied as is.
        CollectionAssert.AreEqual(initializers["pooler.dense.weight"].ToFloats(_onnx), ReadTensor(weights, header["pooler.dense.weight"]));
        CollectionAssert.AreEqual(initializers["embeddings.position_embeddings.weight"].ToFloats(_onnx),
            ReadTensor(weights, header["embeddings.position_embeddings.weight"]));
    }

    [TestMethod]
    public void TruncatedOnnxIsInvalidDataNamingTheFile()
    {
        byte[] model = File.ReadAllBytes(_onnx);
        string output = Path.Combine(_scratch, "never-written");
        foreach (int length in new[] { 0, 10, model.Length / 2, model.Length - 1 })
        {
            string truncated = Path.Combine(_scratch, $"truncated-{length}.onnx");
            File.WriteAllBytes(truncated, model.AsSpan(0, length).ToArray());
            var error = Assert.ThrowsExactly<InvalidDataException>(() => OnnxBertImporter.ConvertToHuggingFaceFolder(truncated, _vocab, output));
            StringAssert.Contains(error.Message, truncated);
        }

        Assert.IsFalse(Directory.Exists(output), "nothing is written when the model cannot be read");
    }

    [TestMethod]
    public void MissingVocabIsNamed()
    {
        string missing = Path.Combine(_scratch, "no-such-vocab.txt");
        var error = Assert.ThrowsExactly<FileNotFoundException>(() =>
            OnnxBertImporter.ConvertToHuggingFaceFolder(_onnx, missing, Path.Combine(_scratch, "never-written")));
        StringAssert.Contains(error.Message, missing);
        Assert.AreEqual(missing, error.FileName);
    }

    [TestMethod]
    public void OnnxWithoutBertWeightsNamesTheMissingTensor()
    {
        // A well-formed model whose graph holds nothing.
        string empty = Path.Combine(_scratch, "empty-graph.onnx");
        File.WriteAllBytes(empty, new ModelProto { Graph = new GraphProto() }.ToByteArray());
        var error = Assert.ThrowsExactly<InvalidDataException>(() =>
            OnnxBertImporter.ConvertToHuggingFaceFolder(empty, _vocab, Path.Combine(_scratch, "never-written")));
        StringAssert.Contains(error.Message, empty);
        StringAssert.Contains(error.Message, "embeddings.word_embeddings.weight");
    }
}
