using Microsoft.ML.Data;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Models.Bert;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// Tags the words of a sentence column with a fine-tuned BERT token classifier, without gradients: each kept word gets
/// the most probable tag of its first sub-token, in the window it is read from (<see cref="BertTextEncoder.EncodeWords"/>).
/// A row's outputs are its word count, then one key per word the row can keep, 0 for words past those kept
/// (<see cref="WordTagColumns"/> reads them): <see cref="ClassCount"/> is that width, 1 + the tokens the windows read.
/// </summary>
internal sealed class TokenClassificationScorer : IRowScorer
{
    public const string ModelKind = "BERT token classifier";
    private const string VocabularyStreamName = "vocab.txt";

    public TokenClassificationScorer(BertTokenClassifier model, BertTextEncoder encoder, string sentenceColumnName)
    {
        Model = model;
        Model.eval();
        Encoder = encoder;
        SentenceColumnName = sentenceColumnName;
    }

    public BertTokenClassifier Model { get; }

    public BertTextEncoder Encoder { get; }

    public string SentenceColumnName { get; }

    public string Kind => ModelKind;

    /// <summary>
    /// The outputs per row: the word count and a key for each word a row can keep, at most one per token the windows read
    /// (MaxSequenceLength - 2 truncated).
    /// </summary>
    public int ClassCount => 1 + (int)Encoder.LongText.TokensRead(Encoder.MaxSequenceLength - 2);

    /// <summary>
    /// Whether <paramref name="longText"/> is a handling for words, whose outputs per row fit <see cref="ModelLimits.MaxSize"/>;
    /// <paramref name="reason"/> says what is expected otherwise.
    /// </summary>
    public static bool ReadsWords(BertLongText longText, int maxSequenceLength, out string reason)
    {
        reason = longText.Handling == ZeroLongTextHandling.HeadAndTail
            ? "Truncate or SlidingWindows: HeadAndTail would leave the middle words of a long sentence untagged"
            : $"windows that read at most {ModelLimits.MaxSize - 1} tokens a row (MaxSequenceLength - 2 + (MaxWindowsPerRow - 1) x " +
              "(MaxSequenceLength - 2 - WindowStride)): each word read is an output";
        return longText.Handling != ZeroLongTextHandling.HeadAndTail && 1 + longText.TokensRead(maxSequenceLength - 2) <= ModelLimits.MaxSize;
    }

    // Sentences vary in length: read a few batches ahead and forward rows of similar length together, as BertScorer does.
    public int BatchesReadTogether => BertScorer.DefaultBatchesReadTogether;

    public DataViewSchema.Column[] CheckInputs(DataViewSchema schema)
    {
        var column = schema.GetColumnOrNull(SentenceColumnName) ?? throw new ArgumentOutOfRangeException(nameof(schema),
            $"Could not find sentence column '{SentenceColumnName}' in the data to score; the model was trained on it.");
        if (column.Type is not TextDataViewType)
            throw new ArgumentOutOfRangeException(nameof(schema), $"Sentence column '{SentenceColumnName}' has type {column.Type}; expected String (text).");
        return new[] { column };
    }

    public IScoringBatch CreateBatch(DataViewRow row, int capacity, int forwardRows) => new Batch(this, row, capacity, forwardRows);

    // Format, in order: the sentence column, config.json, the tag count, lower-casing, MaxSequenceLength, the long-text
    // handling; then the vocab.txt and weights streams.
    public void Save(ModelSaveContext ctx)
    {
        ctx.SaveNonEmptyString(SentenceColumnName);
        ctx.Writer.Write(Model.Config.ToJson());
        ctx.Writer.Write(Model.TagCount);
        ctx.Writer.Write(Encoder.LowerCase);
        ctx.Writer.Write(Encoder.MaxSequenceLength);
        Encoder.LongText.Write(ctx.Writer);
        ctx.SaveBinaryStream(VocabularyStreamName, writer => writer.Write(Encoder.Vocabulary));
        ctx.SaveBinaryStream(ModelZip.WeightsStreamName, writer => Model.save(writer));
    }

    /// <summary>
    /// Reads what <see cref="Save"/> wrote: a token classifier of <paramref name="tagCount"/> tags;
    /// <paramref name="recordsLongText"/> says whether the zip's format holds the long-text handling (taggers saved
    /// before it existed do not, and read long sentences truncated, as they were trained).
    /// </summary>
    public static TokenClassificationScorer Load(ModelLoadContext ctx, int tagCount, bool recordsLongText)
    {
        string source = ModelZip.Source(ctx);
        string sentence = ctx.LoadNonEmptyString();
        var config = BertConfig.Parse(ctx.Reader.ReadString(), $"{source} (its BERT config)");
        int tags = ctx.Reader.ReadInt32();
        ModelZip.RequireClassCount(tags, tagCount, source);
        bool lowerCase = ctx.Reader.ReadBoolean();
        int maxSequenceLength = ctx.Reader.ReadInt32();
        OptionCheck.RequireInFile(maxSequenceLength >= 3 && maxSequenceLength <= config.MaxPositionEmbeddings, source, "MaxSequenceLength", maxSequenceLength,
            $"3 to the config's max_position_embeddings ({config.MaxPositionEmbeddings})");
        var longText = recordsLongText ? BertLongText.Read(ctx.Reader, source, maxSequenceLength, pair: false) : BertLongText.Truncate;
        OptionCheck.RequireInFile(ReadsWords(longText, maxSequenceLength, out string expected), source, "the long-text handling", longText, expected);
        byte[]? vocabulary = null;
        if (!ctx.TryLoadBinaryStream(VocabularyStreamName, reader => vocabulary = reader.ReadBytes((int)reader.BaseStream.Length)))
            throw new InvalidDataException($"The model has no '{VocabularyStreamName}' stream; the file is incomplete.");
        config.RequireVocabulary(vocabulary!, ModelZip.Source(ctx, VocabularyStreamName), $"'{source}'");
        var encoder = new BertTextEncoder(vocabulary!, lowerCase, maxSequenceLength, ModelZip.Source(ctx, VocabularyStreamName), longText);
        var model = ModelZip.LoadWeights(ctx, BertTokenClassifier.StateElementCount(config, tags), () => new BertTokenClassifier(config, tags, new Generator(0)));
        return new TokenClassificationScorer(model, encoder, sentence);
    }

    public void Dispose() => Model.Dispose();

    private sealed class Batch : IScoringBatch
    {
        private readonly TokenClassificationScorer _scorer;
        private readonly ValueGetter<ReadOnlyMemory<char>> _getSentence;
        private readonly BertWordRow[] _rows;
        private readonly int[] _wordCounts;
        private readonly int _forwardRows;
        private ReadOnlyMemory<char> _sentence;

        public Batch(TokenClassificationScorer scorer, DataViewRow row, int capacity, int forwardRows)
        {
            _scorer = scorer;
            _getSentence = row.GetGetter<ReadOnlyMemory<char>>(row.Schema[scorer.SentenceColumnName]);
            _rows = new BertWordRow[capacity];
            _wordCounts = new int[capacity];
            _forwardRows = forwardRows;
        }

        public void ReadRow(int slot)
        {
            _getSentence(ref _sentence);
            var words = WordLabelColumns.Words(_sentence.ToString());
            _wordCounts[slot] = words.Length;
            _rows[slot] = _scorer.Encoder.EncodeWords(words);
        }

        public void Score(int rows, float[] outputs)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            int width = _scorer.ClassCount;
            // The batch's windows, forwarded at most forwardRows together, sorted by length (stably) when that takes more than one forward.
            var windows = Enumerable.Range(0, rows).SelectMany(row => _rows[row].Windows.Select((window, w) => (Row: row, Window: w, window.Ids))).ToArray();
            if (windows.Length > _forwardRows)
                windows = windows.OrderBy(window => window.Ids.Length).ToArray();
            var tags = Enumerable.Range(0, rows).Select(row => new long[_rows[row].Windows.Length][]).ToArray();
            for (int first = 0; first < windows.Length; first += _forwardRows)
            {
                int count = Math.Min(_forwardRows, windows.Length - first);
                var forward = windows.Skip(first).Take(count).Select(window => (window.Ids, new int[window.Ids.Length])).ToList();
                var best = _scorer.Model.forward(BertCollator.Collate(forward, 0, count, _scorer.Encoder.PaddingId)).argmax(2).contiguous();
                long tokens = best.shape[1];
                var flat = best.data<long>().ToArray();
                for (int k = 0; k < count; k++)
                    tags[windows[first + k].Row][windows[first + k].Window] = flat.AsSpan(k * (int)tokens, (int)tokens).ToArray();
            }
            for (int row = 0; row < rows; row++)
            {
                var output = outputs.AsSpan(row * width, width);
                output.Clear();
                output[0] = _wordCounts[row];
                var readings = _rows[row].Readings;
                for (int word = 0; word < readings.Length; word++)
                    output[1 + word] = tags[row][readings[word].Window][readings[word].Position] + 1;
            }
        }
    }
}
