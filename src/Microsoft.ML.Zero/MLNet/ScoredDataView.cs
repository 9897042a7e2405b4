using Microsoft.ML.Data;
using Microsoft.ML.Zero.Config;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// The input data with Score and PredictedLabel appended. Scoring runs in batches: a second cursor over the same input
/// reads the features of the next rows ahead of the main cursor (as many scoring batches as the scorer regroups),
/// which passes the input columns through unchanged.
/// </summary>
internal sealed class ScoredDataView : IDataView
{
    private readonly IDataView _input;
    private readonly IScoringTransformer _transformer;
    private readonly DataViewSchema.Column[] _modelInputs;

    public ScoredDataView(IDataView input, IScoringTransformer transformer)
    {
        _input = input;
        _transformer = transformer;
        _modelInputs = transformer.Scorer.CheckInputs(input.Schema);
        Schema = transformer.Outputs.Append(input.Schema);
    }

    public DataViewSchema Schema { get; }

    // Both cursors must see rows in the same order, so this view never shuffles.
    public bool CanShuffle => false;

    public long? GetRowCount() => _input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var needed = columnsNeeded.Select(c => c.Index).ToHashSet();
        int inputCount = _input.Schema.Count;
        var inputColumns = _input.Schema.Where(c => needed.Contains(c.Index));
        bool scoring = needed.Contains(inputCount) || needed.Contains(inputCount + 1);
        return new Cursor(this, _input.GetRowCursor(inputColumns), scoring ? _input.GetRowCursor(_modelInputs) : null);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly ScoredDataView _parent;
        private readonly DataViewRowCursor _input;
        private readonly DataViewRowCursor? _ahead;
        private readonly IScoringBatch? _batch;
        private readonly int _capacity;
        private readonly int _classCount;
        private readonly float[] _probabilities;
        private long _batchStart;
        private int _batchRows;

        public Cursor(ScoredDataView parent, DataViewRowCursor input, DataViewRowCursor? ahead)
        {
            _parent = parent;
            _input = input;
            _ahead = ahead;
            var scorer = parent._transformer.Scorer;
            _classCount = scorer.ClassCount;
            int forwardRows = parent._transformer.ScoringBatchSize;
            // At most MaxSize outputs held at once: a tagger reading long sentences in many windows has a wide row.
            _capacity = ahead is null ? 0 : (int)Math.Max(1, Math.Min((long)forwardRows * scorer.BatchesReadTogether, ModelLimits.MaxSize / _classCount));
            _batch = ahead is null ? null : scorer.CreateBatch(ahead, _capacity, forwardRows);
            _probabilities = new float[_capacity * _classCount];
        }

        public override DataViewSchema Schema => _parent.Schema;

        public override long Position => _input.Position;

        public override long Batch => _input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => OutputColumns.IsActive(_input, column, _ahead is not null);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) =>
            OutputColumns.Getter<TValue>(_input, column, _parent._transformer.Outputs, _ahead is null ? null : Current, "cursor");

        public override bool MoveNext()
        {
            if (!_input.MoveNext())
                return false;
            if (_ahead is not null && _input.Position >= _batchStart + _batchRows)
                ScoreNextBatch();
            return true;
        }

        private ReadOnlySpan<float> Current() =>
            _probabilities.AsSpan((int)(_input.Position - _batchStart) * _classCount, _classCount);

        private void ScoreNextBatch()
        {
            _batchStart = _input.Position;
            int rows = 0;
            while (rows < _capacity && _ahead!.MoveNext())
                _batch!.ReadRow(rows++);
            if (rows == 0)
                throw new InvalidOperationException("The input data returned fewer rows on a second pass; scoring needs data that reads the same each time.");
            _parent._transformer.Score(_batch!, rows, _probabilities);
            _batchRows = rows;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _input.Dispose();
                _ahead?.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
