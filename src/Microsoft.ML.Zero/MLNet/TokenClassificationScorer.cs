using Microsoft.ML.Data;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Models.Bert;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// Tags the words of a sentence column with a fine-tuned BERT token classifier, without gradients: each kept word gets
/// the most probable tag of its first sub-token. A row's outputs are its word count, then one key per kept word
/// (<see cref="WordTagColumns"/> reads them): <see cref="ClassCount"/> is that width, 1 + MaxSequenceLength - 2.
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

    /// <summary>The outputs per row: the word count and a key for each of the at most MaxSequenceLength - 2 words a row keeps.</summary>
    public int ClassCount => Encoder.MaxSequenceLength - 1;

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

    // Format, in order: the sentence column, config.json, the tag count, lower-casing, MaxSequenceLength; then the
    // vocab.txt and weights streams.
    public void Save(ModelSaveContext ctx)
    {
        ctx.SaveNonEmptyString(SentenceColumnName);
        ctx.Writer.Write(Model.Config.ToJson());
        ctx.Writer.Write(Model.TagCount);
        ctx.Writer.Write(Encoder.LowerCase);
        ctx.Writer.Write(Encoder.MaxSequenceLength);
        ctx.SaveBinaryStream(VocabularyStreamName, writer => writer.Write(Encoder.Vocabulary));
        ctx.SaveBinaryStream(ModelZip.WeightsStreamName, writer => Model.save(writer));
    }

    /// <summary>Reads what <see cref="Save"/> wrote: a token classifier of <paramref name="tagCount"/> tags.</summary>
    public static TokenClassificationScorer Load(ModelLoadContext ctx, int tagCount)
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
        byte[]? vocabulary = null;
        if (!ctx.TryLoadBinaryStream(VocabularyStreamName, reader => vocabulary = reader.ReadBytes((int)reader.BaseStream.Length)))
            throw new InvalidDataException($"The model has no '{VocabularyStreamName}' stream; the file is incomplete.");
        config.RequireVocabulary(vocabulary!, ModelZip.Source(ctx, VocabularyStreamName), $"'{source}'");
        var encoder = new BertTextEncoder(vocabulary!, lowerCase, maxSequenceLength, ModelZip.Source(ctx, VocabularyStreamName));
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
            var order = Enumerable.Range(0, rows);
            if (rows > _forwardRows)
                order = order.OrderBy(row => _rows[row].Ids.Length);
            var sorted = order.ToArray();
            for (int first = 0; first < rows; first += _forwardRows)
            {
                int count = Math.Min(_forwardRows, rows - first);
                var windows = sorted.Skip(first).Take(count).Select(row => (_rows[row].Ids, new int[_rows[row].Ids.Length])).ToList();
                var tags = _scorer.Model.forward(BertCollator.Collate(windows, 0, count, _scorer.Encoder.PaddingId)).argmax(2).contiguous();
                long tokens = tags.shape[1];
                var best = tags.data<long>().ToArray();
                for (int k = 0; k < count; k++)
                {
                    int row = sorted[first + k];
                    var output = outputs.AsSpan(row * width, width);
                    output[0] = _wordCounts[row];
                    var starts = _rows[row].WordStarts;
                    for (int word = 0; word < starts.Length; word++)
                        output[1 + word] = best[k * tokens + starts[word]] + 1;
                }
            }
        }
    }
}
