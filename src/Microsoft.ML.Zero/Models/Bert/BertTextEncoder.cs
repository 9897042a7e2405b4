using Microsoft.ML.Tokenizers;

namespace Microsoft.ML.Zero.Models.Bert;

/// <summary>
/// WordPiece tokenization as BERT expects it: [CLS] a [SEP] (b [SEP]), token type 0 for the first sentence and 1 for
/// the second, truncated longest-first to the maximum sequence length.
/// </summary>
internal sealed class BertTextEncoder
{
    private readonly BertTokenizer _tokenizer;

    /// <param name="vocabulary">vocab.txt's bytes.</param>
    /// <param name="lowerCase">Lower-case text before WordPiece, as an uncased checkpoint needs.</param>
    /// <param name="maxSequenceLength">Tokens per row, special tokens included.</param>
    /// <param name="source">Where the vocabulary was read (a file, a zip entry); when given, a vocabulary the tokenizer
    /// refuses (one without [UNK], [CLS], [SEP], [PAD] or [MASK]) is an InvalidDataException naming it.</param>
    public BertTextEncoder(byte[] vocabulary, bool lowerCase, int maxSequenceLength, string? source = null)
    {
        Vocabulary = vocabulary;
        LowerCase = lowerCase;
        MaxSequenceLength = maxSequenceLength;
        using var stream = new MemoryStream(vocabulary);
        try
        {
            _tokenizer = BertTokenizer.Create(stream, new BertOptions { LowerCaseBeforeTokenization = lowerCase });
        }
        catch (ArgumentException exception) when (source is not null)
        {
            throw new InvalidDataException($"'{source}' is not a BERT WordPiece vocabulary: {exception.Message} " +
                "Expected one token a line, [PAD], [UNK], [CLS], [SEP] and [MASK] among them.", exception);
        }
    }

    /// <summary>The vocab.txt bytes, kept so a saved model carries its own tokenizer.</summary>
    public byte[] Vocabulary { get; }

    public bool LowerCase { get; }

    public int MaxSequenceLength { get; }

    public int PaddingId => _tokenizer.PaddingTokenId;

    public (int[] Ids, int[] TokenTypes) Encode(string first, string? second)
    {
        var a = _tokenizer.EncodeToIds(first, addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true).ToList();
        var b = second is null ? null : _tokenizer.EncodeToIds(second, addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true).ToList();
        int budget = MaxSequenceLength - (b is null ? 2 : 3);
        while (a.Count + (b?.Count ?? 0) > budget)
        {
            var longer = b is not null && b.Count > a.Count ? b : a;
            longer.RemoveAt(longer.Count - 1);
        }
        var ids = _tokenizer.BuildInputsWithSpecialTokens(a, b).ToArray();
        var types = b is null ? new int[ids.Length] : _tokenizer.CreateTokenTypeIdsFromSequences(a, b).ToArray();
        return (ids, types);
    }
}
