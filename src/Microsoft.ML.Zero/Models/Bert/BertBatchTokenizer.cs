using Microsoft.ML.Zero.Config;

namespace Microsoft.ML.Zero.Models.Bert;

/// <summary>
/// Turns text into <see cref="BertBatch"/>es as a Hugging Face BERT tokenizer called with padding and truncation does:
/// WordPiece with the checkpoint's vocabulary and lower-casing (Microsoft.ML.Tokenizers' BertTokenizer), [CLS] and
/// [SEP] added, pairs truncated longest-first to the maximum length, and rows padded to the longest row of the batch.
/// </summary>
public sealed class BertBatchTokenizer
{
    private readonly BertTextEncoder _encoder;

    private BertBatchTokenizer(BertTextEncoder encoder) => _encoder = encoder;

    /// <summary>The tokenizer of a local Hugging Face BERT folder (vocab.txt, and tokenizer_config.json's do_lower_case if present).</summary>
    public static BertBatchTokenizer FromPretrained(string checkpointPath, int maxSequenceLength = 128)
    {
        OptionCheck.Require(maxSequenceLength >= 3, nameof(maxSequenceLength), maxSequenceLength, "at least 3 ([CLS], a token, [SEP])");
        var checkpoint = BertCheckpoint.Open(checkpointPath);
        checkpoint.RequireSequenceLength(maxSequenceLength, nameof(maxSequenceLength));
        return new BertBatchTokenizer(new BertTextEncoder(File.ReadAllBytes(checkpoint.VocabPath), checkpoint.LowerCase, maxSequenceLength, checkpoint.VocabPath));
    }

    /// <summary>Encodes <paramref name="texts"/> (with <paramref name="pairs"/> as second sentences, token type 1) into one padded batch.</summary>
    public BertBatch Encode(IReadOnlyList<string> texts, IReadOnlyList<string>? pairs = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (pairs is not null && pairs.Count != texts.Count)
            throw new ArgumentException($"{pairs.Count} second sentences for {texts.Count} texts; pass one per text.", nameof(pairs));
        var rows = texts.Select((text, i) => _encoder.Encode(text, pairs?[i])).ToList();
        return BertCollator.Collate(rows, 0, rows.Count, _encoder.PaddingId);
    }
}
