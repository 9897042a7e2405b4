using Microsoft.ML.Tokenizers;

namespace Microsoft.ML.Zero.Models.Bert;

/// <summary>
/// WordPiece tokenization as BERT expects it: [CLS] a [SEP] (b [SEP]), token type 0 for the first sentence and 1 for
/// the second, truncated longest-first to the maximum sequence length, or cut by the long-text handling into its head
/// and tail or into windows.
/// </summary>
internal sealed class BertTextEncoder
{
    private readonly BertTokenizer _tokenizer;

    /// <param name="vocabulary">vocab.txt's bytes.</param>
    /// <param name="lowerCase">Lower-case text before WordPiece, as an uncased checkpoint needs.</param>
    /// <param name="maxSequenceLength">Tokens per row, special tokens included.</param>
    /// <param name="source">Where the vocabulary was read (a file, a zip entry); when given, a vocabulary the tokenizer
    /// refuses (one without [UNK], [CLS], [SEP], [PAD] or [MASK]) is an InvalidDataException naming it.</param>
    /// <param name="longText">How <see cref="EncodeWindows"/> reads text longer than the maximum length; null: truncation.</param>
    public BertTextEncoder(byte[] vocabulary, bool lowerCase, int maxSequenceLength, string? source = null, BertLongText? longText = null)
    {
        Vocabulary = vocabulary;
        LowerCase = lowerCase;
        MaxSequenceLength = maxSequenceLength;
        LongText = longText ?? BertLongText.Truncate;
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

    public BertLongText LongText { get; }

    public int PaddingId => _tokenizer.PaddingTokenId;

    /// <summary>One row of at most the maximum length: the text truncated, a pair longest-first.</summary>
    public (int[] Ids, int[] TokenTypes) Encode(string first, string? second)
    {
        var a = Tokenize(first);
        var b = second is null ? null : Tokenize(second);
        int budget = MaxSequenceLength - (b is null ? 2 : 3);
        while (a.Count + (b?.Count ?? 0) > budget)
        {
            var longer = b is not null && b.Count > a.Count ? b : a;
            longer.RemoveAt(longer.Count - 1);
        }
        return Build(a, b);
    }

    /// <summary>
    /// A row as the long-text handling reads it: one window (truncated, or its head and tail), or the windows that
    /// cover it. The handlings other than truncation cut only the first text and keep a pair's second text whole in
    /// every window, as Hugging Face's <c>truncation="only_first"</c>; as there, a second text that leaves too little
    /// room for the first is an error.
    /// </summary>
    public (int[] Ids, int[] TokenTypes)[] EncodeWindows(string first, string? second)
    {
        if (LongText.Handling == ZeroLongTextHandling.Truncate)
            return new[] { Encode(first, second) };
        var a = Tokenize(first);
        var b = second is null ? null : Tokenize(second);
        int budget = MaxSequenceLength - (b is null ? 2 : 3) - (b?.Count ?? 0);
        if (a.Count <= budget)
            return new[] { Build(a, b) };
        int needed = LongText.Handling == ZeroLongTextHandling.SlidingWindows ? LongText.WindowStride + 1 : 1;
        if (budget < needed)
            throw new ArgumentException($"A second text of {b!.Count} tokens leaves {Math.Max(budget, 0)} of the {MaxSequenceLength} tokens (MaxSequenceLength) " +
                $"for a first text of {a.Count}; {LongText.Handling} keeps the second text whole in every window, so it must leave at least {needed} " +
                (needed > 1 ? $"(WindowStride {LongText.WindowStride} + 1). " : ". ") +
                "Raise MaxSequenceLength, shorten the second text, or use Truncate, which truncates a pair longest-first.");
        if (LongText.Handling == ZeroLongTextHandling.HeadAndTail)
            return new[] { Build(BertLongText.HeadAndTail(a, budget), b) };
        return LongText.Windows(a.Count, budget).Select(window => Build(a.GetRange(window.Start, window.Count), b)).ToArray();
    }

    /// <summary>
    /// Words as token classification reads them (Hugging Face's <c>is_split_into_words</c>): each word tokenized on
    /// its own, [CLS] words [SEP], and where each word's first sub-token is, the one that carries its label. A word that
    /// tokenizes to nothing (only characters normalization drops) becomes [UNK], so every word has a token. Truncation
    /// keeps the first MaxSequenceLength - 2 tokens; a word is kept if its first sub-token is, and the words after are
    /// dropped: <see cref="BertWordRow.WordStarts"/> then holds fewer entries than there are words.
    /// </summary>
    public BertWordRow EncodeWords(IReadOnlyList<string> words)
    {
        int budget = MaxSequenceLength - 2;
        var tokens = new List<int>(Math.Min(budget, words.Count * 2));
        var starts = new List<int>(Math.Min(budget, words.Count));
        foreach (string word in words)
        {
            if (tokens.Count == budget)
                break;
            var pieces = Tokenize(word);
            if (pieces.Count == 0)
                pieces.Add(_tokenizer.UnknownTokenId);
            // +1: [CLS] comes first.
            starts.Add(tokens.Count + 1);
            tokens.AddRange(pieces.Take(budget - tokens.Count));
        }
        return new BertWordRow(Build(tokens, null).Ids, starts.ToArray());
    }

    private List<int> Tokenize(string text) =>
        _tokenizer.EncodeToIds(text, addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true).ToList();

    private (int[] Ids, int[] TokenTypes) Build(List<int> a, List<int>? b)
    {
        var ids = _tokenizer.BuildInputsWithSpecialTokens(a, b).ToArray();
        var types = b is null ? new int[ids.Length] : _tokenizer.CreateTokenTypeIdsFromSequences(a, b).ToArray();
        return (ids, types);
    }
}

/// <summary>A sentence's words encoded for token classification: the token ids, and the position of each kept word's first sub-token.</summary>
internal sealed record BertWordRow(int[] Ids, int[] WordStarts);
