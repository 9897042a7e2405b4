using System.Globalization;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.Tensors;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests.TestSupport;

/// <summary>
/// A randomly initialized two-layer BERT (hidden 8) written as a Hugging Face folder: config.json, vocab.txt and
/// model.safetensors. The text trainer fine-tunes it on a few hundred sentences in seconds, so tests of the training
/// loop's text path need not load MiniLM. Words outside its small vocabulary are [UNK], one token each, so a sentence
/// keeps about its real token count.
/// </summary>
internal static class TinyBertFolder
{
    public static readonly string[] Vocabulary =
    {
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!", "the", "a", "and", "i", "it", "is", "was", "this", "not", "very",
        "good", "great", "bad", "food", "service", "movie", "phone", "love", "worst", "best",
    };

    public const int MaxPositions = 64;

    /// <summary>
    /// Writes the folder into <paramref name="folder"/> and returns it; the weights follow <paramref name="seed"/>, and
    /// <paramref name="hiddenAct"/> is config.json's hidden_act.
    /// </summary>
    public static string Write(string folder, double hiddenDropout, int seed = 1, string hiddenAct = "gelu")
    {
        TorchRuntime.EnsureLoaded();
        Directory.CreateDirectory(folder);
        string dropout = hiddenDropout.ToString(CultureInfo.InvariantCulture);
        File.WriteAllText(Path.Combine(folder, "config.json"), $$"""
            {"model_type":"bert","vocab_size":{{Vocabulary.Length}},"hidden_size":8,"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":16,
             "hidden_act":"{{hiddenAct}}","hidden_dropout_prob":{{dropout}},"attention_probs_dropout_prob":0.0,"max_position_embeddings":{{MaxPositions}},
             "type_vocab_size":2,"layer_norm_eps":1e-12,"pad_token_id":0}
            """);
        File.WriteAllLines(Path.Combine(folder, "vocab.txt"), Vocabulary);
        var config = BertConfig.Load(Path.Combine(folder, "config.json"));
        manual_seed(seed);
        using var model = new BertModel(config, new Generator((ulong)seed));
        var tensors = model.state_dict().Select(entry => new SafeTensor(entry.Key, entry.Value.shape, entry.Value.contiguous().data<float>().ToArray())).ToList();
        using var stream = File.Create(Path.Combine(folder, "model.safetensors"));
        SafeTensorsWriter.Write(stream, tensors);
        return folder;
    }
}
