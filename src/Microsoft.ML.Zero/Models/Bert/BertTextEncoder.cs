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
    /// its own, and the tokens cut into windows of [CLS] tokens [SEP]; each window records where the first sub-tokens
    /// of its words lie (a word's first sub-token carries its label). A word that tokenizes to nothing (only
    /// characters normalization drops) becomes [UNK], so every word has a token.
    /// <list type="bullet">
    /// <item>Truncate keeps one window of the first MaxSequenceLength - 2 tokens; a word is kept if its first sub-token
    /// is, and the words after are dropped.</item>
    /// <item>SlidingWindows cuts the tokens as <see cref="BertLongText.Windows"/> does, so a word may be cut across two
    /// windows; words past the last of MaxWindowsPerRow windows are dropped. A word whose first sub-token two windows
    /// hold is read from the one where it has the most tokens on its nearer side (the earlier on a tie), as BERT's
    /// SQuAD windows read an answer "with maximum context".</item>
    /// </list>
    /// <see cref="BertWordRow.Readings"/> then holds fewer entries than there are words. HeadAndTail is not a
    /// handling for words: it would leave the middle ones unread.
    /// </summary>
    public BertWordRow EncodeWords(IReadOnlyList<string> words)
    {
        if (LongText.Handling == ZeroLongTextHandling.HeadAndTail)
            throw new InvalidOperationException("Token classification reads long text truncated or in sliding windows, not in its head and tail.");
        int budget = MaxSequenceLength - 2;
        int readable = (int)Math.Min(LongText.TokensRead(budget), int.MaxValue);
        var tokens = new List<int>();
        var starts = new List<int>();
        foreach (string word in words)
        {
            if (tokens.Count == readable)
                break;
            var pieces = Tokenize(word);
            if (pieces.Count == 0)
                pieces.Add(_tokenizer.UnknownTokenId);
            starts.Add(tokens.Count);
            tokens.AddRange(pieces.Take(readable - tokens.Count));
        }
        var cuts = LongText.Handling == ZeroLongTextHandling.SlidingWindows ? LongText.Windows(tokens.Count, budget) : new() { (0, tokens.Count) };
        var windows = new BertWordWindow[cuts.Count];
        var readings = new (int Window, int Position)[starts.Count];
        var context = new int[starts.Count];
        Array.Fill(context, -1);
        int firstWord = 0;
        for (int w = 0; w < cuts.Count; w++)
        {
            var (start, count) = cuts[w];
            while (firstWord < starts.Count && starts[firstWord] < start)
                firstWord++;
            int endWord = firstWord;
            while (endWord < starts.Count && starts[endWord] < start + count)
                endWord++;
            // +1: [CLS] comes first.
            var wordStarts = starts.GetRange(firstWord, endWord - firstWord).Select(s => s - start + 1).ToArray();
            windows[w] = new BertWordWindow(Build(tokens.GetRange(start, count), null).Ids, firstWord, wordStarts);
            for (int word = firstWord; word < endWord; word++)
            {
                int before = starts[word] - start, nearer = Math.Min(before, count - 1 - before);
                if (nearer > context[word])
                    (context[word], readings[word]) = (nearer, (w, before + 1));
            }
        }
        return new BertWordRow(windows, readings);
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

/// <summary>
/// A sentence's words encoded for token classification: its windows, and for each word kept, the window it is read
/// from and its first sub-token's position there.
/// </summary>
internal sealed record BertWordRow(BertWordWindow[] Windows, (int Window, int Position)[] Readings);

/// <summary>
/// One window of a sentence's words: its token ids, and the words whose first sub-token it holds, from word
/// <paramref name="FirstWord"/> on, as the positions of those sub-tokens.
/// </summary>
internal sealed record BertWordWindow(int[] Ids, int FirstWord, int[] WordStarts);
