using Google.Protobuf;
using Onnx;

namespace Microsoft.ML.Zero.Tests.TestSupport;

/// <summary>
/// A one-layer BERT encoder (vocabulary 8, hidden 4, 2 heads, intermediate 8) as <c>torch.onnx.export</c> lays it out,
/// small enough to fuzz: Hugging Face names for embeddings, biases, LayerNorms and pooler; anonymous MatMul weights
/// stored [in, out]; a Reshape into heads; an Erf; the pooler as Gemm with transB=1. Two layouts of what the importer
/// reads: <see cref="Fused"/> (LayerNormalization, a Constant node's shape, raw_data) and <see cref="Decomposed"/> (the
/// older opsets' LayerNorm arithmetic, a Concat shape, float_data).
/// </summary>
internal static class TinyOnnxBert
{
    public const int Vocab = 8, Hidden = 4, Heads = 2, Positions = 8, TypeVocab = 2, Intermediate = 8;

    public static readonly string[] Vocabulary = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "movie" };

    public static byte[] Fused() => Model(new Layout());

    public static byte[] Decomposed() => Model(new Layout { Decomposed = true });

    /// <summary>
    /// What to write: <see cref="Decomposed"/> chooses the older layout; the rest are the faults of regression tests,
    /// each a file the fuzz tests once produced, reduced to the one field that mattered.
    /// </summary>
    public sealed record Layout
    {
        public bool Decomposed { get; init; }

        /// <summary>The embeddings' LayerNorm epsilon.</summary>
        public float Epsilon { get; init; } = 1e-12f;

        /// <summary>False drops the output of the Add node that adds the query's bias.</summary>
        public bool QueryAddHasOutput { get; init; } = true;

        /// <summary>False drops the input of the decomposed LayerNorm's Sqrt node.</summary>
        public bool SqrtHasInput { get; init; } = true;

        /// <summary>The word embeddings' hidden size; the other tensors keep <see cref="Hidden"/>.</summary>
        public int WordEmbeddingWidth { get; init; } = Hidden;
    }

    public static byte[] Model(Layout layout)
    {
        bool decomposed = layout.Decomposed;
        var random = new Random(decomposed ? 2 : 1);
        var graph = new GraphProto { Name = "main_graph" };
        var initializers = new List<TensorProto>();
        void Weight(string name, params long[] dims) =>
            initializers.Add(FloatTensor(name, dims, random, raw: !decomposed || dims.Length == 2));
        void Node(string op, string name, string[] inputs, string[] outputs, params AttributeProto[] attributes) =>
            graph.Node.Add(new NodeProto { OpType = op, Name = name, Input = { inputs }, Output = { outputs }, Attribute = { attributes } });

        Weight("embeddings.word_embeddings.weight", Vocab, layout.WordEmbeddingWidth);
        Weight("embeddings.position_embeddings.weight", Positions, Hidden);
        Weight("embeddings.token_type_embeddings.weight", TypeVocab, Hidden);
        Weight("embeddings.LayerNorm.weight", Hidden);
        Weight("embeddings.LayerNorm.bias", Hidden);
        Node("Gather", "/embeddings/word/Gather", new[] { "embeddings.word_embeddings.weight", "input_ids" }, new[] { "words" });
        Node("Gather", "/embeddings/position/Gather", new[] { "embeddings.position_embeddings.weight", "position_ids" }, new[] { "positions" });
        Node("Gather", "/embeddings/type/Gather", new[] { "embeddings.token_type_embeddings.weight", "token_type_ids" }, new[] { "types" });
        Node("Add", "/embeddings/Add", new[] { "words", "positions" }, new[] { "sum0" });
        Node("Add", "/embeddings/Add_1", new[] { "sum0", "types" }, new[] { "embedded" });
        if (decomposed)
        {
            initializers.Add(FloatTensor("eps", Array.Empty<long>(), null, raw: false, layout.Epsilon));
            Node("ReduceMean", "/embeddings/LayerNorm/ReduceMean", new[] { "embedded" }, new[] { "mean" });
            Node("Sub", "/embeddings/LayerNorm/Sub", new[] { "embedded", "mean" }, new[] { "centered" });
            Node("Mul", "/embeddings/LayerNorm/Square", new[] { "centered", "centered" }, new[] { "squared" });
            Node("ReduceMean", "/embeddings/LayerNorm/ReduceMean_1", new[] { "squared" }, new[] { "variance" });
            Node("Add", "/embeddings/LayerNorm/Add", new[] { "variance", "eps" }, new[] { "shifted" });
            Node("Sqrt", "/embeddings/LayerNorm/Sqrt", layout.SqrtHasInput ? new[] { "shifted" } : Array.Empty<string>(), new[] { "deviation" });
            Node("Div", "/embeddings/LayerNorm/Div", new[] { "centered", "deviation" }, new[] { "normalized" });
            Node("Mul", "/embeddings/LayerNorm/Mul", new[] { "normalized", "embeddings.LayerNorm.weight" }, new[] { "scaled" });
            Node("Add", "/embeddings/LayerNorm/Add_1", new[] { "scaled", "embeddings.LayerNorm.bias" }, new[] { "hidden0" });
        }
        else
        {
            Node("LayerNormalization", "/embeddings/LayerNorm/LayerNormalization", new[] { "embedded", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias" },
                new[] { "hidden0" }, FloatAttribute("epsilon", layout.Epsilon), IntAttribute("axis", -1));
        }

        const string prefix = "encoder.layer.0.";
        int anonymous = 0;
        string Linear(string linear, string input, int inputs, int outputs)
        {
            string weight = $"onnx::MatMul_{100 + anonymous++}", bias = prefix + linear + ".bias";
            Weight(weight, inputs, outputs);
            Weight(bias, outputs);
            Node("MatMul", $"/{linear}/MatMul", new[] { input, weight }, new[] { linear + "/mm" });
            bool output = layout.QueryAddHasOutput || linear != "attention.self.query";
            Node("Add", $"/{linear}/Add", new[] { bias, linear + "/mm" }, output ? new[] { linear + "/out" } : Array.Empty<string>());
            return linear + "/out";
        }

        string query = Linear("attention.self.query", "hidden0", Hidden, Hidden);
        string key = Linear("attention.self.key", "hidden0", Hidden, Hidden);
        string value = Linear("attention.self.value", "hidden0", Hidden, Hidden);
        if (decomposed)
        {
            initializers.Add(Int64Tensor("heads", new long[] { 1 }, Heads));
            initializers.Add(Int64Tensor("head_size", new long[] { 1 }, Hidden / Heads));
            Node("Concat", "/attention/self/Concat", new[] { "batch", "sequence", "heads", "head_size" }, new[] { "head_shape" }, IntAttribute("axis", 0));
        }
        else
        {
            var shape = new AttributeProto { Name = "value", T = Int64Tensor("", new long[] { 4 }, 0, 0, Heads, Hidden / Heads), Type = AttributeProto.Types.AttributeType.Tensor };
            Node("Constant", "/attention/self/Constant", Array.Empty<string>(), new[] { "head_shape" }, shape);
        }
        Node("Reshape", "/attention/self/Reshape", new[] { query, "head_shape" }, new[] { "query_heads" });
        Node("Reshape", "/attention/self/Reshape_1", new[] { key, "head_shape" }, new[] { "key_heads" });
        Node("Reshape", "/attention/self/Reshape_2", new[] { value, "head_shape" }, new[] { "value_heads" });
        Node("MatMul", "/attention/self/MatMul", new[] { "query_heads", "key_heads" }, new[] { "scores" });
        Node("Softmax", "/attention/self/Softmax", new[] { "scores" }, new[] { "probabilities" });
        Node("MatMul", "/attention/self/MatMul_1", new[] { "probabilities", "value_heads" }, new[] { "context" });
        string attended = Linear("attention.output.dense", "context", Hidden, Hidden);
        Weight(prefix + "attention.output.LayerNorm.weight", Hidden);
        Weight(prefix + "attention.output.LayerNorm.bias", Hidden);
        Node("Add", "/attention/output/Add_1", new[] { attended, "hidden0" }, new[] { "residual0" });
        Node("LayerNormalization", "/attention/output/LayerNorm", new[] { "residual0", prefix + "attention.output.LayerNorm.weight", prefix + "attention.output.LayerNorm.bias" },
            new[] { "hidden1" }, FloatAttribute("epsilon", 1e-12f));
        string intermediate = Linear("intermediate.dense", "hidden1", Hidden, Intermediate);
        Node("Erf", "/intermediate/Erf", new[] { intermediate }, new[] { "erf" });
        string output = Linear("output.dense", "erf", Intermediate, Hidden);
        Weight(prefix + "output.LayerNorm.weight", Hidden);
        Weight(prefix + "output.LayerNorm.bias", Hidden);
        Node("Add", "/output/Add_1", new[] { output, "hidden1" }, new[] { "residual1" });
        Node("LayerNormalization", "/output/LayerNorm", new[] { "residual1", prefix + "output.LayerNorm.weight", prefix + "output.LayerNorm.bias" },
            new[] { "last_hidden_state" }, FloatAttribute("epsilon", 1e-12f));
        Weight("pooler.dense.weight", Hidden, Hidden);
        Weight("pooler.dense.bias", Hidden);
        Node("Gemm", "/pooler/dense/Gemm", new[] { "last_hidden_state", "pooler.dense.weight", "pooler.dense.bias" }, new[] { "pooled" },
            FloatAttribute("alpha", 1), IntAttribute("transB", 1));
        Node("Tanh", "/pooler/activation/Tanh", new[] { "pooled" }, new[] { "pooler_output" });

        graph.Initializer.Add(initializers);
        foreach (string input in new[] { "input_ids", "token_type_ids" })
            graph.Input.Add(new ValueInfoProto { Name = input });
        graph.Output.Add(new ValueInfoProto { Name = "last_hidden_state" });
        var model = new ModelProto { IrVersion = 8, ProducerName = "pytorch", Graph = graph, OpsetImport = { new OperatorSetIdProto { Domain = "", Version = 17 } } };
        return model.ToByteArray();
    }

    private static TensorProto FloatTensor(string name, long[] dims, Random? random, bool raw, params float[] values)
    {
        long count = dims.Aggregate(1L, (n, d) => n * d);
        if (values.Length == 0)
            values = Enumerable.Range(0, (int)count).Select(_ => (float)(random!.NextDouble() - 0.5)).ToArray();
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, Dims = { dims } };
        if (raw)
            tensor.RawData = ByteString.CopyFrom(values.SelectMany(BitConverter.GetBytes).ToArray());
        else
            tensor.FloatData.Add(values);
        return tensor;
    }

    private static TensorProto Int64Tensor(string name, long[] dims, params long[] values) =>
        new() { Name = name, DataType = (int)TensorProto.Types.DataType.Int64, Dims = { dims }, Int64Data = { values } };

    private static AttributeProto FloatAttribute(string name, float value) => new() { Name = name, F = value, Type = AttributeProto.Types.AttributeType.Float };

    private static AttributeProto IntAttribute(string name, long value) => new() { Name = name, I = value, Type = AttributeProto.Types.AttributeType.Int };
}
