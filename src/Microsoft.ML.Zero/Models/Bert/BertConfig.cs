using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.Zero.Config;

namespace Microsoft.ML.Zero.Models.Bert;

/// <summary>The sizes of a BERT encoder, read from a Hugging Face <c>config.json</c>.</summary>
internal sealed record BertConfig(
    int VocabSize, int HiddenSize, int NumHiddenLayers, int NumAttentionHeads, int IntermediateSize, string HiddenAct,
    double HiddenDropoutProb, double AttentionProbsDropoutProb, int MaxPositionEmbeddings, int TypeVocabSize,
    double LayerNormEps, int PadTokenId)
{
    /// <summary>Reads <paramref name="path"/>; a missing, malformed or out-of-range key is an error naming the file and key.</summary>
    public static BertConfig Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"The checkpoint has no config.json: '{path}' does not exist.", path);
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Reads a config.json's text; malformed JSON or a key out of range is an InvalidDataException naming <paramref name="source"/> and the key.</summary>
    public static BertConfig Parse(string json, string source)
    {
        try
        {
            return ParseObject(json, source);
        }
        catch (JsonException exception)
        {
            throw new InvalidDataException($"'{source}' is not valid JSON: {exception.Message}", exception);
        }
        catch (InvalidOperationException exception)
        {
            // System.Text.Json checks a key's escapes only when it is read: an unpaired surrogate ("\ud800") throws then.
            throw new InvalidDataException($"'{source}' holds a key that is not valid text: {exception.Message}", exception);
        }
    }

    private static BertConfig ParseObject(string json, string source)
    {
        var root = JsonNode.Parse(json) as JsonObject ?? throw new InvalidDataException($"'{source}' must hold a JSON object.");
        // Upper limits far above any real BERT keep a crafted file from asking for terabytes (or overflowing int
        // arithmetic) before any weight is read; the weights must match these sizes anyway.
        int Int(string key, int max, int? fallback = null)
        {
            var node = root[key];
            if (node is null)
                return fallback ?? throw new InvalidDataException($"'{source}' has no '{key}'; expected a positive integer.");
            if (node is not JsonValue value || !value.TryGetValue(out int number) || number < 1 || number > max)
                throw new InvalidDataException($"'{source}': '{key}' is {node.ToJsonString()}; expected a positive integer of at most {max}.");
            return number;
        }
        // Hugging Face's dropout modules take p in [0, 1]; p = 1 zeroes every activation (and the scaling divides by 0).
        double Probability(string key)
        {
            var node = root[key];
            if (node is null)
                return 0.1;
            if (node is not JsonValue value || !value.TryGetValue(out double number) || number is not (>= 0 and < 1))
                throw new InvalidDataException($"'{source}': '{key}' is {node.ToJsonString()}; expected a number in [0, 1).");
            return number;
        }
        double Number(string key, double fallback)
        {
            var node = root[key];
            if (node is null)
                return fallback;
            if (node is not JsonValue value || !value.TryGetValue(out double number) || number < 0)
                throw new InvalidDataException($"'{source}': '{key}' is {node.ToJsonString()}; expected a number of 0 or more.");
            return number;
        }

        string Text(string key, string fallback)
        {
            var node = root[key];
            if (node is null)
                return fallback;
            if (node is not JsonValue value || !value.TryGetValue(out string? text))
                throw new InvalidDataException($"'{source}': '{key}' is {node.ToJsonString()}; expected a string.");
            return text;
        }

        string modelType = Text("model_type", "bert");
        if (modelType != "bert")
            throw new InvalidDataException($"'{source}': model_type is '{modelType}'; expected 'bert' (a BERT encoder with Hugging Face parameter names).");
        string activation = Text("hidden_act", "gelu");
        if (activation is not ("gelu" or "relu" or "gelu_new" or "gelu_pytorch_tanh"))
            throw new InvalidDataException($"'{source}': hidden_act is '{activation}'; expected gelu, gelu_new, gelu_pytorch_tanh or relu.");

        var config = new BertConfig(
            Int("vocab_size", MaxVocabSize), Int("hidden_size", MaxHiddenSize), Int("num_hidden_layers", ModelLimits.MaxLayers),
            Int("num_attention_heads", MaxHiddenSize), Int("intermediate_size", ModelLimits.MaxSize), activation,
            Probability("hidden_dropout_prob"), Probability("attention_probs_dropout_prob"), Int("max_position_embeddings", ModelLimits.MaxSize),
            Int("type_vocab_size", ModelLimits.MaxSize, 2), Number("layer_norm_eps", 1e-12), ReadPadTokenId(root, source));
        if (config.HiddenSize % config.NumAttentionHeads != 0)
            throw new InvalidDataException($"'{source}': hidden_size {config.HiddenSize} is not a multiple of num_attention_heads {config.NumAttentionHeads}.");
        // The embedding has vocab_size rows: padding_idx must be one of them.
        if (config.PadTokenId >= config.VocabSize)
            throw new InvalidDataException($"'{source}': 'pad_token_id' is {config.PadTokenId}; expected an id below vocab_size ({config.VocabSize}).");
        return config;
    }

    // Beyond ModelLimits: vocabularies are larger than other sizes (real ones reach about 250,000); hidden units fewer.
    private const int MaxVocabSize = 1 << 24, MaxHiddenSize = 1 << 16;

    private static int ReadPadTokenId(JsonObject root, string source)
    {
        var node = root["pad_token_id"];
        if (node is null)
            return 0;
        if (node is not JsonValue value || !value.TryGetValue(out int id) || id < 0)
            throw new InvalidDataException($"'{source}': 'pad_token_id' is {node.ToJsonString()}; expected an id of 0 or more.");
        return id;
    }

    /// <summary>
    /// Throws unless every token of <paramref name="vocabulary"/> (vocab.txt's bytes; a token's id is its line number)
    /// is below <see cref="VocabSize"/>: a larger id would index past the word embedding. A vocabulary with fewer
    /// tokens is fine, as in Hugging Face, where some models pad vocab_size.
    /// </summary>
    public void RequireVocabulary(byte[] vocabulary, string vocabSource, string configSource)
    {
        using var reader = new StreamReader(new MemoryStream(vocabulary));
        int tokens = 0, line = 0;
        // Counted as Microsoft.ML.Tokenizers' WordPiece reads it: line by line, empty lines keep their id unused.
        for (string? text = reader.ReadLine(); text is not null; text = reader.ReadLine(), line++)
        {
            if (text.Length > 0)
                tokens = line + 1;
        }
        if (tokens > VocabSize)
            throw new InvalidDataException($"'{vocabSource}' has {tokens} tokens, but vocab_size is {VocabSize} in {configSource}; " +
                "expected at most vocab_size tokens (the word embedding has vocab_size rows).");
    }

    /// <summary>The config as Hugging Face writes it, for storing inside a saved model.</summary>
    public string ToJson() => new JsonObject
    {
        ["model_type"] = "bert",
        ["vocab_size"] = VocabSize,
        ["hidden_size"] = HiddenSize,
        ["num_hidden_layers"] = NumHiddenLayers,
        ["num_attention_heads"] = NumAttentionHeads,
        ["intermediate_size"] = IntermediateSize,
        ["hidden_act"] = HiddenAct,
        ["hidden_dropout_prob"] = HiddenDropoutProb,
        ["attention_probs_dropout_prob"] = AttentionProbsDropoutProb,
        ["max_position_embeddings"] = MaxPositionEmbeddings,
        ["type_vocab_size"] = TypeVocabSize,
        ["layer_norm_eps"] = LayerNormEps,
        ["pad_token_id"] = PadTokenId,
    }.ToJsonString();
}
