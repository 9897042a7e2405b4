using System.Buffers.Binary;
using System.Collections;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Models.Bert;

/// <summary>
/// A local Hugging Face BERT folder: <c>config.json</c>, <c>vocab.txt</c>, and weights in <c>model.safetensors</c> or
/// <c>pytorch_model.bin</c> (optionally <c>tokenizer_config.json</c> for lower-casing).
/// </summary>
internal sealed class BertCheckpoint
{
    private BertCheckpoint(string directory, BertConfig config, string vocabPath, string weightsPath, bool lowerCase)
    {
        Directory = directory;
        Config = config;
        VocabPath = vocabPath;
        WeightsPath = weightsPath;
        LowerCase = lowerCase;
    }

    public string Directory { get; }

    public BertConfig Config { get; }

    public string VocabPath { get; }

    public string WeightsPath { get; }

    public bool LowerCase { get; }

    /// <summary>Throws unless <paramref name="length"/> tokens fit the model's position embeddings, naming <paramref name="option"/>.</summary>
    public void RequireSequenceLength(int length, string option)
    {
        if (length > Config.MaxPositionEmbeddings)
            throw new ArgumentOutOfRangeException(option, length,
                $"{option} is {length}; the checkpoint's config.json allows at most max_position_embeddings = {Config.MaxPositionEmbeddings}.");
    }

    public static BertCheckpoint Open(string directory)
    {
        if (string.IsNullOrEmpty(directory) || !System.IO.Directory.Exists(directory))
            throw new DirectoryNotFoundException($"The BERT checkpoint folder '{directory}' does not exist (CheckpointPath).");
        string configPath = Path.Combine(directory, "config.json");
        var config = BertConfig.Load(configPath);
        string vocab = Path.Combine(directory, "vocab.txt");
        if (!File.Exists(vocab))
            throw new FileNotFoundException($"The checkpoint has no vocab.txt: '{vocab}' does not exist.", vocab);
        config.RequireVocabulary(File.ReadAllBytes(vocab), vocab, $"'{configPath}'");
        string weights = new[] { "model.safetensors", "pytorch_model.bin" }.Select(f => Path.Combine(directory, f)).FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException($"The checkpoint folder '{directory}' has neither model.safetensors nor pytorch_model.bin.");
        return new BertCheckpoint(directory, config, vocab, weights, ReadLowerCase(Path.Combine(directory, "tokenizer_config.json")));
    }

    private static bool ReadLowerCase(string tokenizerConfigPath)
    {
        if (!File.Exists(tokenizerConfigPath))
            return true; // Hugging Face's BertTokenizer default
        var node = JsonNode.Parse(File.ReadAllText(tokenizerConfigPath))?["do_lower_case"];
        return node is null || node.GetValue<bool>();
    }

    /// <summary>
    /// Loads the weights into <paramref name="model"/>. Names follow Hugging Face; a "bert." prefix and pretraining
    /// heads ("cls.*") are accepted, and so is the pooler into a model without one (token classification, as Hugging Face
    /// drops it there). Any other missing or unexpected name, or a shape mismatch, is an error listing them.
    /// </summary>
    public void LoadInto(BertModel model)
    {
        var loaded = ReadStateDict();
        try
        {
            var expected = model.state_dict();
            var missing = expected.Keys.Where(k => !loaded.ContainsKey(k)).ToList();
            var unexpected = loaded.Keys.Where(k => !expected.ContainsKey(k) && (model.HasPooler || !k.StartsWith("pooler.", StringComparison.Ordinal))).ToList();
            if (missing.Count > 0 || unexpected.Count > 0)
            {
                throw new InvalidDataException($"The weights in '{WeightsPath}' do not match a BERT encoder with this config.json." +
                    (missing.Count > 0 ? $" Missing: {Names(missing)}." : "") + (unexpected.Count > 0 ? $" Unexpected: {Names(unexpected)}." : ""));
            }
            using var _ = no_grad();
            foreach (var (name, target) in expected)
            {
                var source = loaded[name];
                if (!source.shape.SequenceEqual(target.shape))
                    throw new InvalidDataException($"'{WeightsPath}': '{name}' has shape [{string.Join(", ", source.shape)}]; config.json implies [{string.Join(", ", target.shape)}].");
                target.copy_(source);
            }
        }
        finally
        {
            foreach (var tensor in loaded.Values)
                tensor.Dispose();
        }
    }

    /// <summary>
    /// Throws unless the safetensors header and every tensor it lists lie within the file, each tensor's byte range
    /// exactly the size its dtype and shape imply. The reader allocates each tensor from its header's shape before
    /// reading its bytes, so a header that claims more than the file holds is refused here first.
    /// </summary>
    private static void RequireSafetensorsFit(string path)
    {
        using var stream = File.OpenRead(path);
        if (stream.Length < 8)
            throw new InvalidDataException($"'{path}' is not a safetensors file: it is shorter than the 8-byte header length.");
        var prefix = new byte[8];
        stream.ReadExactly(prefix);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > (ulong)(stream.Length - 8))
            throw new InvalidDataException($"'{path}' declares a safetensors header of {headerLength} bytes, but the file holds {stream.Length} bytes.");
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        long data = stream.Length - 8 - (long)headerLength;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header);
        }
        catch (JsonException exception)
        {
            throw new InvalidDataException($"'{path}': the safetensors header is not valid JSON: {exception.Message}", exception);
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"'{path}': the safetensors header is not a JSON object.");
            try
            {
                foreach (var property in document.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__"))
                    RequireTensorFits(property.Value, $"'{path}': tensor '{property.Name}'", data);
            }
            catch (InvalidOperationException exception)
            {
                // System.Text.Json checks a string's UTF-8 and escapes only when it is read, as a name or a dtype here.
                throw new InvalidDataException($"'{path}': the safetensors header holds a string that is not valid text (malformed UTF-8, or an unpaired surrogate escape such as \\ud800): {exception.Message}", exception);
            }
        }
    }

    private static void RequireTensorFits(JsonElement entry, string tensor, long data)
    {
        long[] Longs(string key) =>
            entry.ValueKind == JsonValueKind.Object && entry.TryGetProperty(key, out var array) && array.ValueKind == JsonValueKind.Array
                ? array.EnumerateArray().Select(e => e.TryGetInt64(out long value) ? value : throw Missing()).ToArray()
                : throw Missing();
        InvalidDataException Missing() => new($"{tensor} needs a dtype, and integer shape and data_offsets, in the safetensors header.");

        string? dtype = entry.ValueKind == JsonValueKind.Object && entry.TryGetProperty("dtype", out var type) && type.ValueKind == JsonValueKind.String ? type.GetString() : null;
        long size = dtype switch
        {
            "F64" or "I64" => 8,
            "F32" or "I32" => 4,
            "F16" or "BF16" or "I16" => 2,
            "I8" or "U8" or "BOOL" => 1,
            null => throw Missing(),
            _ => throw new InvalidDataException($"{tensor} has dtype {dtype}, which this reader does not know."),
        };
        long[] shape = Longs("shape"), offsets = Longs("data_offsets");
        string described = $"{tensor} of shape [{string.Join(", ", shape)}]";
        if (offsets is not [var begin, var end] || begin < 0 || end < begin || end > data)
            throw new InvalidDataException($"{described} has data_offsets [{string.Join(", ", offsets)}]; the file holds {data} bytes of tensor data.");
        // -1 for a negative dimension or a product past long's range: never multiplied into an overflow.
        long bytes = size;
        foreach (long dim in shape)
            bytes = bytes < 0 || dim < 0 || dim > 0 && bytes > long.MaxValue / dim ? -1 : bytes * dim;
        if (bytes != end - begin)
            throw new InvalidDataException($"{described} needs {(bytes < 0 ? $"more than {long.MaxValue}" : bytes)} bytes; its data_offsets hold {end - begin}.");
    }

    private static string Names(List<string> names) =>
        string.Join(", ", names.Take(10)) + (names.Count > 10 ? $" and {names.Count - 10} more" : "");

    private Dictionary<string, Tensor> ReadStateDict()
    {
        Dictionary<string, Tensor> raw;
        bool safetensors = WeightsPath.EndsWith(".safetensors", StringComparison.Ordinal);
        if (safetensors)
            RequireSafetensorsFit(WeightsPath);
        else
            PickledStorages.RequireComplete(WeightsPath);
        try
        {
            raw = safetensors
                ? Safetensors.LoadStateDict(WeightsPath)
                : PyTorchUnpickler.UnpickleStateDict(WeightsPath).Cast<DictionaryEntry>().ToDictionary(e => (string)e.Key, e => (Tensor)e.Value!);
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            throw new InvalidDataException($"Could not read the weights in '{WeightsPath}': {exception.Message}", exception);
        }
        var normalized = new Dictionary<string, Tensor>();
        foreach (var (name, tensor) in raw)
        {
            // Pretraining heads and the position-id buffer some exports carry are not part of the encoder.
            if (name.StartsWith("cls.", StringComparison.Ordinal) || name.EndsWith("position_ids", StringComparison.Ordinal))
            {
                tensor.Dispose();
                continue;
            }
            string key = name.StartsWith("bert.", StringComparison.Ordinal) ? name["bert.".Length..] : name;
            normalized[key] = tensor.to_type(ScalarType.Float32);
        }
        return normalized;
    }
}
