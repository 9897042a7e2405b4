using Microsoft.ML.Data;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// Scores one or two text columns with a fine-tuned BERT, without gradients, reading long text as the model was trained
/// to (its encoder's long-text handling, saved with it): a classifier's class probabilities, or a regression's value
/// (the head's one output as it is, as Hugging Face's BertForSequenceClassification with one label).
/// </summary>
internal sealed class BertScorer : IRowScorer
{
    public const string ModelKind = "BERT";
    private const string VocabularyStreamName = "vocab.txt";

    public BertScorer(BertClassifier model, BertTextEncoder encoder, string sentence1ColumnName, string? sentence2ColumnName, bool regression = false)
    {
        Regression = regression;
        Model = model;
        Model.eval();
        Encoder = encoder;
        Sentence1ColumnName = sentence1ColumnName;
        Sentence2ColumnName = sentence2ColumnName;
    }

    public BertClassifier Model { get; }

    public BertTextEncoder Encoder { get; }

    public string Sentence1ColumnName { get; }

    public string? Sentence2ColumnName { get; }

    /// <summary>Whether the head predicts a value (a one-output head, no softmax) rather than class probabilities.</summary>
    public bool Regression { get; }

    public string Kind => ModelKind;

    public int ClassCount => Model.ClassCount;

    public DataViewSchema.Column[] CheckInputs(DataViewSchema schema)
    {
        var names = Sentence2ColumnName is null ? new[] { Sentence1ColumnName } : new[] { Sentence1ColumnName, Sentence2ColumnName };
        return names.Select(name =>
        {
            var column = schema.GetColumnOrNull(name) ?? throw new ArgumentOutOfRangeException(nameof(schema),
                $"Could not find text column '{name}' in the data to score; the model was trained on it.");
            if (column.Type is not TextDataViewType)
                throw new ArgumentOutOfRangeException(nameof(schema), $"Text column '{name}' has type {column.Type}; expected String (text).");
            return column;
        }).ToArray();
    }

    /// <summary>
    /// Scoring batches a cursor reads before scoring, sorted by length so that each forward pads little (rows come back
    /// in their order); 1 scores each batch as read. Sentences vary in length: a batch of them padded to its longest
    /// row is mostly padding.
    /// </summary>
    public int BatchesReadTogether { get; set; } = DefaultBatchesReadTogether;

    internal const int DefaultBatchesReadTogether = 8;

    public IScoringBatch CreateBatch(DataViewRow row, int capacity, int forwardRows) => new Batch(this, row, capacity, forwardRows);

    public void Save(ModelSaveContext ctx)
    {
        ctx.SaveNonEmptyString(Sentence1ColumnName);
        ctx.SaveStringOrNull(Sentence2ColumnName);
        ctx.Writer.Write(Model.Config.ToJson());
        ctx.Writer.Write(Model.ClassCount);
        ctx.Writer.Write(Encoder.LowerCase);
        ctx.Writer.Write(Encoder.MaxSequenceLength);
        Encoder.LongText.Write(ctx.Writer);
        ctx.SaveBinaryStream(VocabularyStreamName, writer => writer.Write(Encoder.Vocabulary));
        ctx.SaveBinaryStream(ModelZip.WeightsStreamName, writer => Model.save(writer));
    }

    /// <summary>
    /// Reads what <see cref="Save"/> wrote: a classifier of <paramref name="labelCount"/> classes, or with
    /// <paramref name="regression"/> a one-output regression; <paramref name="recordsLongText"/> says whether the zip's
    /// format holds the long-text handling (classifiers saved before it existed do not).
    /// </summary>
    public static BertScorer Load(ModelLoadContext ctx, int labelCount, bool recordsLongText, bool regression = false)
    {
        string source = ModelZip.Source(ctx);
        string sentence1 = ctx.LoadNonEmptyString();
        string? sentence2 = ctx.LoadStringOrNull();
        var config = BertConfig.Parse(ctx.Reader.ReadString(), $"{source} (its BERT config)");
        int classCount = ctx.Reader.ReadInt32();
        if (regression)
            OptionCheck.RequireInFile(classCount == 1, source, "the head's output count", classCount, "1, a regression's one value");
        else
            ModelZip.RequireClassCount(classCount, labelCount, source);
        bool lowerCase = ctx.Reader.ReadBoolean();
        int maxSequenceLength = ctx.Reader.ReadInt32();
        OptionCheck.RequireInFile(maxSequenceLength >= 3 && maxSequenceLength <= config.MaxPositionEmbeddings, source, "MaxSequenceLength", maxSequenceLength,
            $"3 to the config's max_position_embeddings ({config.MaxPositionEmbeddings})");
        // Models saved before the long-text handling existed read long text truncated, as they were trained.
        var longText = recordsLongText
            ? BertLongText.Read(ctx.Reader, source, maxSequenceLength, sentence2 is not null)
            : BertLongText.Truncate;
        byte[]? vocabulary = null;
        if (!ctx.TryLoadBinaryStream(VocabularyStreamName, reader => vocabulary = reader.ReadBytes((int)reader.BaseStream.Length)))
            throw new InvalidDataException($"The model has no '{VocabularyStreamName}' stream; the file is incomplete.");
        config.RequireVocabulary(vocabulary!, ModelZip.Source(ctx, VocabularyStreamName), $"'{source}'");
        // The tokenizer first: it holds no native memory, so nothing needs disposing if it fails.
        var encoder = new BertTextEncoder(vocabulary!, lowerCase, maxSequenceLength, ModelZip.Source(ctx, VocabularyStreamName), longText);
        var model = ModelZip.LoadWeights(ctx, BertClassifier.StateElementCount(config, classCount), () => new BertClassifier(config, classCount, new Generator(0)));
        return new BertScorer(model, encoder, sentence1, sentence2, regression);
    }

    public void Dispose() => Model.Dispose();

    private sealed class Batch : IScoringBatch
    {
        private readonly BertScorer _scorer;
        private readonly ValueGetter<ReadOnlyMemory<char>> _getFirst;
        private readonly ValueGetter<ReadOnlyMemory<char>>? _getSecond;
        private readonly (int[] Ids, int[] TokenTypes)[][] _rows;
        private readonly int _forwardRows;
        private ReadOnlyMemory<char> _first;
        private ReadOnlyMemory<char> _second;

        public Batch(BertScorer scorer, DataViewRow row, int capacity, int forwardRows)
        {
            _scorer = scorer;
            _getFirst = row.GetGetter<ReadOnlyMemory<char>>(row.Schema[scorer.Sentence1ColumnName]);
            _getSecond = scorer.Sentence2ColumnName is null ? null : row.GetGetter<ReadOnlyMemory<char>>(row.Schema[scorer.Sentence2ColumnName]);
            _rows = new (int[], int[])[capacity][];
            _forwardRows = forwardRows;
        }

        public void ReadRow(int slot)
        {
            _getFirst(ref _first);
            _getSecond?.Invoke(ref _second);
            _rows[slot] = _scorer.Encoder.EncodeWindows(_first.ToString(), _getSecond is null ? null : _second.ToString());
        }

        public void Score(int rows, float[] probabilities)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            int classes = _scorer.ClassCount;
            // Rows sorted by length (stably) when they take more than one forward; rows that fit one forward keep their order.
            var order = Enumerable.Range(0, rows);
            if (rows > _forwardRows)
                order = order.OrderBy(row => _rows[row].Max(window => window.Ids.Length));
            var sorted = order.ToArray();
            var encoded = sorted.Select(row => _rows[row]).ToArray();
            for (int first = 0; first < rows; first += _forwardRows)
            {
                int count = Math.Min(_forwardRows, rows - first);
                // At most as many windows forward together as rows do without windows: scoring in windows needs no more memory.
                var logits = BertRowLogits.Compute(_scorer.Model, encoded, first, count, _scorer.Encoder.PaddingId, windowsPerForward: _forwardRows);
                var output = TensorMemory.AsSpan((_scorer.Regression ? logits : nn.functional.softmax(logits, dim: 1)).contiguous());
                for (int k = 0; k < count; k++)
                    output.Slice(k * classes, classes).CopyTo(probabilities.AsSpan(sorted[first + k] * classes, classes));
            }
        }
    }
}
