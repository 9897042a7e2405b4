using System.Text.Json;
using System.Text.Json.Nodes;

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
        try
        {
            return Parse(File.ReadAllText(path), path);
        }
        catch (JsonException exception)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {exception.Message}", exception);
        }
    }

    public static BertConfig Parse(string json, string source)
    {
        var root = JsonNode.Parse(json) as JsonObject ?? throw new InvalidDataException($"'{source}' must hold a JSON object.");
        int Int(string key, int? fallback = null)
        {
            var node = root[key];
            if (node is null)
                return fallback ?? throw new InvalidDataException($"'{source}' has no '{key}'; expected a positive integer.");
            if (node is not JsonValue value || !value.TryGetValue(out int number) || number < (key == "pad_token_id" ? 0 : 1))
                throw new InvalidDataException($"'{source}': '{key}' is {node.ToJsonString()}; expected a positive integer.");
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

        string modelType = root["model_type"]?.GetValue<string>() ?? "bert";
        if (modelType != "bert")
            throw new InvalidDataException($"'{source}': model_type is '{modelType}'; expected 'bert' (a BERT encoder with Hugging Face parameter names).");
        string activation = root["hidden_act"]?.GetValue<string>() ?? "gelu";
        if (activation is not ("gelu" or "relu" or "gelu_new" or "gelu_pytorch_tanh"))
            throw new InvalidDataException($"'{source}': hidden_act is '{activation}'; expected gelu, gelu_new, gelu_pytorch_tanh or relu.");

        var config = new BertConfig(
            Int("vocab_size"), Int("hidden_size"), Int("num_hidden_layers"), Int("num_attention_heads"), Int("intermediate_size"),
            activation, Number("hidden_dropout_prob", 0.1), Number("attention_probs_dropout_prob", 0.1),
            Int("max_position_embeddings"), Int("type_vocab_size", 2), Number("layer_norm_eps", 1e-12), Int("pad_token_id", 0));
        if (config.HiddenSize % config.NumAttentionHeads != 0)
            throw new InvalidDataException($"'{source}': hidden_size {config.HiddenSize} is not a multiple of num_attention_heads {config.NumAttentionHeads}.");
        return config;
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
