using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Onnx;

namespace Microsoft.ML.Zero.Models.Bert;

/// <summary>
/// Converts a BERT encoder exported to ONNX (as by <c>torch.onnx.export</c> of a Hugging Face <c>BertModel</c>)
/// into a Hugging Face checkpoint folder, so it can be loaded like any downloaded BERT.
/// </summary>
public static class OnnxBertImporter
{
    /// <summary>The Hugging Face configuration written into the output folder.</summary>
    public const string ConfigFileName = "config.json";

    /// <summary>The WordPiece vocabulary written into the output folder, one token a line.</summary>
    public const string VocabFileName = "vocab.txt";

    /// <summary>The tokenizer settings written into the output folder.</summary>
    public const string TokenizerConfigFileName = "tokenizer_config.json";

    /// <summary>The weights written into the output folder, written last.</summary>
    public const string WeightsFileName = "model.safetensors";

    private static readonly string[] LinearNames =
    {
        "attention.self.query", "attention.self.key", "attention.self.value",
        "attention.output.dense", "intermediate.dense", "output.dense",
    };

    private static readonly string[] LayerNormNames = { "attention.output.LayerNorm", "output.LayerNorm" };

    /// <summary>
    /// Writes <c>config.json</c>, <c>vocab.txt</c> (LF line ends), <c>tokenizer_config.json</c> and <c>model.safetensors</c>
    /// (float32, Hugging Face <c>BertModel</c> names without a <c>bert.</c> prefix, Linear weights as [out, in]) into
    /// <paramref name="outputDirectory"/>. The configuration is read from the graph and the initializers' shapes.
    /// Each file is written under a temporary name and renamed only once all of them are complete, so an interrupted
    /// conversion never leaves a half-written file under a final name. Existing files are overwritten.
    /// </summary>
    /// <param name="onnxPath">The ONNX model: embeddings, biases, LayerNorms and pooler as initializers with Hugging Face
    /// names, Linear weights as initializers (any name) multiplied by <c>MatMul</c> before adding the named bias.</param>
    /// <param name="vocabPath">The WordPiece vocabulary, one token a line (LF or CRLF).</param>
    /// <param name="outputDirectory">The folder to write; created when missing.</param>
    /// <exception cref="FileNotFoundException"><paramref name="onnxPath"/> or <paramref name="vocabPath"/> does not exist.</exception>
    /// <exception cref="InvalidDataException">The ONNX file is malformed or is not a BERT encoder of the expected shape;
    /// the message names the file and the tensor or node that was expected.</exception>
    public static void ConvertToHuggingFaceFolder(string onnxPath, string vocabPath, string outputDirectory)
    {
        ArgumentNullException.ThrowIfNull(onnxPath);
        ArgumentNullException.ThrowIfNull(vocabPath);
        ArgumentNullException.ThrowIfNull(outputDirectory);
        if (!File.Exists(vocabPath))
            throw new FileNotFoundException($"Vocabulary '{vocabPath}' does not exist.", vocabPath);

        var graph = new BertGraph(OnnxModelFile.Read(onnxPath).Graph, onnxPath);
        string[] vocab = ReadVocab(vocabPath);
        if (vocab.Length > graph.VocabSize)
            throw new InvalidDataException(
                $"'{vocabPath}' has {vocab.Length} tokens but '{graph.FileName}' has only {graph.VocabSize} word embeddings.");
        var tensors = graph.ReadTensors();

        Directory.CreateDirectory(outputDirectory);
        var pending = new List<(string Temporary, string Final)>();
        try
        {
            void Stage(string fileName, Action<Stream> write)
            {
                string final = Path.Combine(outputDirectory, fileName);
                string temporary = $"{final}.{Guid.NewGuid():N}.tmp";
                pending.Add((temporary, final));
                using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
                    write(stream);
            }

            Stage(ConfigFileName, stream => WriteConfig(stream, graph, PadTokenId(vocab)));
            Stage(VocabFileName, stream => WriteVocab(stream, vocab));
            Stage(TokenizerConfigFileName, stream => WriteTokenizerConfig(stream, IsUncased(vocab)));
            Stage(WeightsFileName, stream => SafeTensorsWriter.Write(stream, tensors));

            // The weights are renamed last: a reader that sees model.safetensors sees everything else too.
            foreach (var (temporary, final) in pending)
                File.Move(temporary, final, overwrite: true);
            pending.Clear();
        }
        finally
        {
            foreach (var (temporary, _) in pending)
                File.Delete(temporary);
        }
    }

    /// <summary>Splits on LF, dropping a CR before it (CRLF files) and the empty piece after the last line end.</summary>
    private static string[] ReadVocab(string path)
    {
        var tokens = File.ReadAllText(path, Encoding.UTF8).Split('\n').Select(line => line.TrimEnd('\r')).ToList();
        if (tokens.Count > 0 && tokens[^1].Length == 0)
            tokens.RemoveAt(tokens.Count - 1);
        if (tokens.Count == 0)
            throw new InvalidDataException($"Vocabulary '{path}' is empty.");
        return tokens.ToArray();
    }

    private static int PadTokenId(string[] vocab) => Math.Max(0, Array.IndexOf(vocab, "[PAD]"));

    /// <summary>
    /// An uncased WordPiece vocabulary has no upper-case ASCII letter outside its [SPECIAL] tokens; a cased one has many.
    /// ASCII only, because uncased vocabularies keep symbols that Unicode calls upper case, such as 'ℝ'.
    /// </summary>
    private static bool IsUncased(string[] vocab) =>
        !vocab.Any(token => !(token.StartsWith('[') && token.EndsWith(']')) && token.Any(char.IsAsciiLetterUpper));

    private static void WriteVocab(Stream stream, string[] vocab)
    {
        using var writer = new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)) { NewLine = "\n" };
        foreach (string token in vocab)
            writer.WriteLine(token);
    }

    private static void WriteConfig(Stream stream, BertGraph graph, int padTokenId)
    {
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("model_type", "bert");
        json.WriteStartArray("architectures");
        json.WriteStringValue("BertModel");
        json.WriteEndArray();
        json.WriteNumber("vocab_size", graph.VocabSize);
        json.WriteNumber("hidden_size", graph.HiddenSize);
        json.WriteNumber("num_hidden_layers", graph.LayerCount);
        json.WriteNumber("num_attention_heads", graph.HeadCount);
        json.WriteNumber("intermediate_size", graph.IntermediateSize);
        json.WriteString("hidden_act", "gelu");
        json.WriteNumber("hidden_dropout_prob", 0.1);
        json.WriteNumber("attention_probs_dropout_prob", 0.1);
        json.WriteNumber("max_position_embeddings", graph.MaxPositions);
        json.WriteNumber("type_vocab_size", graph.TypeVocabSize);
        // Through the shortest decimal string so 1e-12f is written as 1e-12, not 9.999999960041972e-13.
        json.WriteNumber("layer_norm_eps", double.Parse(graph.LayerNormEps.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture));
        json.WriteNumber("pad_token_id", padTokenId);
        json.WriteNumber("initializer_range", 0.02);
        json.WriteEndObject();
    }

    private static void WriteTokenizerConfig(Stream stream, bool lowerCase)
    {
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteBoolean("do_lower_case", lowerCase);
        json.WriteEndObject();
    }

    /// <summary>Finds BERT's weights and hyper-parameters in an ONNX graph, failing with the name of what is missing.</summary>
    private sealed class BertGraph
    {
        private readonly Dictionary<string, TensorProto> _initializers;
        private readonly Dictionary<string, NodeProto> _producers = new();
        private readonly ILookup<string, NodeProto> _consumers;

        public BertGraph(GraphProto graph, string fileName)
        {
            FileName = fileName;
            _initializers = OnnxModelFile.Initializers(graph, fileName);
            foreach (var node in graph.Node)
                foreach (string output in node.Output)
                    _producers[output] = node;
            _consumers = graph.Node.SelectMany(node => node.Input.Select(input => (input, node))).ToLookup(pair => pair.input, pair => pair.node);

            var words = Initializer("embeddings.word_embeddings.weight", rank: 2);
            VocabSize = Size(words, 0);
            HiddenSize = Size(words, 1);
            MaxPositions = Size(Initializer("embeddings.position_embeddings.weight", rank: 2), 0);
            TypeVocabSize = Size(Initializer("embeddings.token_type_embeddings.weight", rank: 2), 0);
            while (_initializers.ContainsKey($"encoder.layer.{LayerCount}.attention.self.query.bias"))
                LayerCount++;
            if (LayerCount == 0)
                throw Missing("initializer 'encoder.layer.0.attention.self.query.bias'");
            IntermediateSize = Size(Initializer("encoder.layer.0.intermediate.dense.bias", rank: 1), 0);
            HeadCount = ReadHeadCount();
            LayerNormEps = ReadLayerNormEps("embeddings.LayerNorm.weight");
            // Hugging Face "gelu" is the exact, erf-based GELU; the tanh approximation would need another hidden_act.
            if (!graph.Node.Any(node => node.OpType is "Erf" or "Gelu"))
                throw Missing("an Erf node (BERT's erf-based GELU activation)");
        }

        public string FileName { get; }

        public int VocabSize { get; }

        public int HiddenSize { get; }

        public int MaxPositions { get; }

        public int TypeVocabSize { get; }

        public int LayerCount { get; }

        public int IntermediateSize { get; }

        public int HeadCount { get; }

        public float LayerNormEps { get; }

        /// <summary>All weights under their Hugging Face names, in the order of a BertModel's state dict.</summary>
        public List<SafeTensor> ReadTensors()
        {
            var tensors = new List<SafeTensor>();
            foreach (string name in new[] { "word_embeddings", "position_embeddings", "token_type_embeddings" })
                tensors.Add(Copy($"embeddings.{name}.weight", rank: 2));
            AddLayerNorm(tensors, "embeddings.LayerNorm");
            for (int layer = 0; layer < LayerCount; layer++)
            {
                string prefix = $"encoder.layer.{layer}.";
                foreach (string linear in LinearNames)
                {
                    tensors.Add(LinearWeight(prefix + linear + ".bias", prefix + linear + ".weight"));
                    tensors.Add(Copy(prefix + linear + ".bias", rank: 1));
                    if (linear == "attention.output.dense")
                        AddLayerNorm(tensors, prefix + LayerNormNames[0]);
                }

                AddLayerNorm(tensors, prefix + LayerNormNames[1]);
            }

            // Sentence-embedding exports may drop the pooler; Hugging Face then initializes it, and mean pooling ignores it.
            if (_initializers.ContainsKey("pooler.dense.weight"))
            {
                tensors.Add(PoolerWeight());
                tensors.Add(Copy("pooler.dense.bias", rank: 1));
            }

            return tensors;
        }

        private void AddLayerNorm(List<SafeTensor> tensors, string name)
        {
            tensors.Add(Copy(name + ".weight", rank: 1));
            tensors.Add(Copy(name + ".bias", rank: 1));
        }

        private SafeTensor Copy(string name, int rank)
        {
            var tensor = Initializer(name, rank);
            return new SafeTensor(name, tensor.Dims.ToArray(), tensor.ToFloats(FileName));
        }

        /// <summary>
        /// The exporter folds a Linear into MatMul(x, W) + bias, with W an anonymous initializer stored [in, out]:
        /// find the Add that uses the named bias, the MatMul that feeds it, and transpose its weight to [out, in].
        /// </summary>
        private SafeTensor LinearWeight(string biasName, string weightName)
        {
            int outputs = (int)Initializer(biasName, rank: 1).Dims[0];
            var add = _consumers[biasName].FirstOrDefault(node => node.OpType == "Add")
                ?? throw Missing($"an Add node using bias '{biasName}' (for '{weightName}')");
            var matMul = add.Input.Where(input => input != biasName).Select(Producer).FirstOrDefault(node => node?.OpType == "MatMul")
                ?? throw Missing($"a MatMul node feeding '{add.Name}' (for '{weightName}')");
            var weight = matMul.Input.Select(input => _initializers.GetValueOrDefault(input)).FirstOrDefault(tensor => tensor?.Dims.Count == 2)
                ?? throw Missing($"a 2-D weight initializer input of '{matMul.Name}' (for '{weightName}')");
            if (weight.Dims[1] != outputs)
                throw new InvalidDataException(
                    $"'{FileName}': weight '{weight.Name}' of '{matMul.Name}' (for '{weightName}') has shape {weight.Shape()}, expected [in,{outputs}].");
            return new SafeTensor(weightName, new[] { weight.Dims[1], weight.Dims[0] }, Transpose(weight.ToFloats(FileName), (int)weight.Dims[0], (int)weight.Dims[1]));
        }

        /// <summary>The pooler is exported as Gemm(x, W, b); with transB=1 its weight is already [out, in], as in PyTorch.</summary>
        private SafeTensor PoolerWeight()
        {
            const string name = "pooler.dense.weight";
            var weight = Initializer(name, rank: 2);
            var gemm = _consumers[name].FirstOrDefault();
            bool stored = gemm is { OpType: "Gemm" } && OnnxModelFile.Attribute(gemm, "transB") is { I: 1 };
            float[] values = weight.ToFloats(FileName);
            return stored
                ? new SafeTensor(name, weight.Dims.ToArray(), values)
                : new SafeTensor(name, new[] { weight.Dims[1], weight.Dims[0] }, Transpose(values, (int)weight.Dims[0], (int)weight.Dims[1]));
        }

        /// <summary>
        /// Self-attention reshapes the query [batch, seq, hidden] to [batch, seq, heads, head size]; the head count is the
        /// third element of that Reshape's target shape, a constant, or a Concat of dynamic sizes and constants.
        /// </summary>
        private int ReadHeadCount()
        {
            const string bias = "encoder.layer.0.attention.self.query.bias";
            var add = _consumers[bias].FirstOrDefault(node => node.OpType == "Add") ?? throw Missing($"an Add node using bias '{bias}'");
            string query = add.Output.FirstOrDefault() ?? throw Missing($"an output of '{add.Name}', the Add node of bias '{bias}'");
            var reshape = _consumers[query].FirstOrDefault(node => node.OpType == "Reshape" && node.Input.Count == 2)
                ?? throw Missing($"a Reshape of the query '{query}' into attention heads");
            long? heads = null;
            if (Constant(reshape.Input[1]) is { Length: 4 } shape)
                heads = shape[2];
            else if (Producer(reshape.Input[1]) is { OpType: "Concat", Input.Count: 4 } concat)
                heads = Constant(concat.Input[2]) is { Length: 1 } value ? value[0] : null;
            if (heads is not > 0 || HiddenSize % heads.Value != 0)
                throw Missing($"a constant head count dividing hidden size {HiddenSize} in the target shape '{reshape.Input[1]}' of '{reshape.Name}'");
            return (int)heads.Value;
        }

        /// <summary>LayerNormalization's epsilon attribute, or the constant added to the variance in the decomposed form
        /// Mul(Div(x - mean, Sqrt(Add(variance, eps))), weight) that older opsets export.</summary>
        private float ReadLayerNormEps(string weightName)
        {
            var user = _consumers[weightName].FirstOrDefault() ?? throw Missing($"a node using '{weightName}'");
            if (user.OpType == "LayerNormalization")
                return RequireEps(OnnxModelFile.Attribute(user, "epsilon")?.F ?? 1e-5f, user);
            var div = user.Input.Select(Producer).FirstOrDefault(node => node?.OpType == "Div");
            var sqrt = div?.Input.Select(Producer).FirstOrDefault(node => node?.OpType == "Sqrt");
            var add = sqrt?.Input.FirstOrDefault() is { } variance ? Producer(variance) : null;
            var eps = add is { OpType: "Add" } ? add.Input.Select(ScalarFloat).FirstOrDefault(value => value is not null) : null;
            return eps is { } value
                ? RequireEps(value, add!)
                : throw Missing($"the epsilon of the LayerNorm using '{weightName}' (Add of a constant before Sqrt, or LayerNormalization)");
        }

        // config.json's layer_norm_eps is a JSON number of 0 or more: NaN or infinity could not even be written.
        private float RequireEps(float eps, NodeProto node) =>
            float.IsFinite(eps) && eps >= 0 ? eps
                : throw new InvalidDataException($"'{FileName}': the LayerNorm epsilon of node '{node.Name}' is {eps}; expected a finite number of 0 or more.");

        private NodeProto? Producer(string output) => _producers.GetValueOrDefault(output);

        /// <summary>The value of an initializer or Constant node, when it is one.</summary>
        private TensorProto? ConstantTensor(string name) =>
            _initializers.GetValueOrDefault(name)
            ?? (Producer(name) is { OpType: "Constant" } node ? OnnxModelFile.Attribute(node, "value")?.T : null);

        private long[]? Constant(string name) =>
            ConstantTensor(name) is { DataType: OnnxTensorValues.Int64 or OnnxTensorValues.Int32 } tensor ? tensor.ToInt64s(FileName) : null;

        private float? ScalarFloat(string name) =>
            ConstantTensor(name) is { DataType: OnnxTensorValues.Float } tensor && tensor.ElementCount() == 1 ? tensor.ToFloats(FileName)[0] : null;

        private TensorProto Initializer(string name, int rank)
        {
            if (!_initializers.TryGetValue(name, out var tensor))
                throw Missing($"initializer '{name}'");
            if (tensor.Dims.Count != rank)
                throw new InvalidDataException($"'{FileName}': initializer '{name}' has shape {tensor.Shape()}, expected {rank} dimensions.");
            return tensor;
        }

        // A size of config.json: at least 1 (BertConfig refuses 0), and within int since the file holds every element.
        private int Size(TensorProto tensor, int dimension) =>
            tensor.Dims[dimension] is >= 1 and <= int.MaxValue
                ? (int)tensor.Dims[dimension]
                : throw new InvalidDataException($"'{FileName}': initializer '{tensor.Name}' has shape {tensor.Shape()}; " +
                    $"its size {tensor.Dims[dimension]} becomes a config.json size, which must be at least 1.");

        private InvalidDataException Missing(string what) => new($"'{FileName}' is not a BERT encoder export: expected {what}.");

        private static float[] Transpose(float[] values, int rows, int columns)
        {
            var transposed = new float[values.Length];
            for (int row = 0; row < rows; row++)
                for (int column = 0; column < columns; column++)
                    transposed[column * rows + row] = values[row * columns + column];
            return transposed;
        }
    }
}

/// <summary>One named float32 tensor to store in a safetensors file.</summary>
internal sealed record SafeTensor(string Name, long[] Shape, float[] Values);

/// <summary>
/// Writes the safetensors format: an 8-byte little-endian header length, a JSON header mapping each name to its dtype,
/// shape and byte range, then the tensors' little-endian bytes back to back.
/// </summary>
internal static class SafeTensorsWriter
{
    public static void Write(Stream stream, IReadOnlyList<SafeTensor> tensors)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Writing safetensors needs a little-endian machine.");

        using var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            // transformers refuses safetensors whose metadata does not say which framework wrote them.
            json.WriteStartObject("__metadata__");
            json.WriteString("format", "pt");
            json.WriteEndObject();
            long offset = 0;
            foreach (var tensor in tensors)
            {
                long end = offset + (long)tensor.Values.Length * sizeof(float);
                json.WriteStartObject(tensor.Name);
                json.WriteString("dtype", "F32");
                json.WriteStartArray("shape");
                foreach (long dim in tensor.Shape)
                    json.WriteNumberValue(dim);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(end);
                json.WriteEndArray();
                json.WriteEndObject();
                offset = end;
            }

            json.WriteEndObject();
        }

        // Padding the header with spaces to a multiple of 8 keeps the data aligned, as the reference writer does.
        while (header.Length % 8 != 0)
            header.WriteByte((byte)' ');
        Span<byte> length = stackalloc byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        stream.Write(length);
        header.Position = 0;
        header.CopyTo(stream);
        foreach (var tensor in tensors)
            stream.Write(MemoryMarshal.AsBytes(tensor.Values.AsSpan()));
    }
}
