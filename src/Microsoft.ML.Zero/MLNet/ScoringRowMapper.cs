using Microsoft.ML.Data;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>Scores one row at a time, for PredictionEngine and other row-to-row consumers.</summary>
internal sealed class ScoringRowMapper : IRowToRowMapper
{
    private readonly IScoringTransformer _transformer;
    private readonly DataViewSchema.Column[] _modelInputs;

    public ScoringRowMapper(DataViewSchema inputSchema, IScoringTransformer transformer)
    {
        _transformer = transformer;
        _modelInputs = transformer.Scorer.CheckInputs(inputSchema);
        InputSchema = inputSchema;
        OutputSchema = transformer.Outputs.Append(inputSchema);
    }

    public DataViewSchema InputSchema { get; }

    public DataViewSchema OutputSchema { get; }

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var wanted = dependingColumns.Select(c => c.Index).ToHashSet();
        var inputs = InputSchema.Where(c => wanted.Contains(c.Index)).ToList();
        if (wanted.Any(index => index >= InputSchema.Count))
            inputs.AddRange(_modelInputs.Where(c => !inputs.Contains(c)));
        return inputs;
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns) =>
        new ScoredRow(this, input, activeColumns.Any(c => c.Index >= InputSchema.Count));

    private sealed class ScoredRow : DataViewRow
    {
        private readonly ScoringRowMapper _parent;
        private readonly DataViewRow _input;
        private readonly IScoringBatch? _batch;
        private readonly float[] _probabilities;
        private long _scoredPosition = -1;

        public ScoredRow(ScoringRowMapper parent, DataViewRow input, bool scoring)
        {
            _parent = parent;
            _input = input;
            _batch = scoring ? parent._transformer.Scorer.CreateBatch(input, 1, 1) : null;
            _probabilities = new float[parent._transformer.Scorer.ClassCount];
        }

        public override DataViewSchema Schema => _parent.OutputSchema;

        public override long Position => _input.Position;

        public override long Batch => _input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => OutputColumns.IsActive(_input, column, _batch is not null);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) =>
            OutputColumns.Getter<TValue>(_input, column, _parent._transformer.Outputs, _batch is null ? null : Current, "row");

        // A PredictionEngine moves one input row under this row; score each position once, when first asked.
        private ReadOnlySpan<float> Current()
        {
            if (_scoredPosition != _input.Position || _input.Position < 0)
            {
                _batch!.ReadRow(0);
                _parent._transformer.Score(_batch, 1, _probabilities);
                _scoredPosition = _input.Position;
            }
            return _probabilities;
        }
    }
}
