using Microsoft.ML.Data;
using Microsoft.ML.Zero.MLNet;

namespace Microsoft.ML.Zero;

/// <summary>
/// What every trained Microsoft.ML.Zero model does as an ML.NET transformer: appends its columns to the input, scores
/// lazily in batches (Transform) or row by row (PredictionEngine), from several threads at once, and saves into a
/// standard ML.NET model zip. <see cref="ZeroTransformer"/> (classifiers), <see cref="ZeroRegressionTransformer"/> and
/// <see cref="ZeroNamedEntityRecognitionTransformer"/> differ in their columns and their saved fields.
/// </summary>
public abstract class ZeroModelTransformer : ITransformer, IDisposable, IScoringTransformer
{
    private readonly ModelLifetime _lifetime;
    private readonly IRowScorer _scorer;
    private readonly IOutputColumns _outputs;

    private protected ZeroModelTransformer(IRowScorer scorer, IOutputColumns outputs, int scoringBatchSize)
    {
        _lifetime = new ModelLifetime(GetType().Name, scorer.Kind);
        _scorer = scorer;
        _outputs = outputs;
        ScoringBatchSize = scoringBatchSize;
    }

    /// <summary>Always true: each row is scored on its own, so PredictionEngine can use this transformer.</summary>
    public bool IsRowToRowMapper => true;

    internal int ScoringBatchSize { get; }

    IRowScorer IScoringTransformer.Scorer => _scorer;

    IOutputColumns IScoringTransformer.Outputs => _outputs;

    int IScoringTransformer.ScoringBatchSize => ScoringBatchSize;

    /// <summary>The input schema with the model's columns added; throws, naming the column, when an input column is missing or of the wrong type.</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        _scorer.CheckInputs(inputSchema);
        return _outputs.Append(inputSchema);
    }

    /// <summary>Scores <paramref name="input"/> lazily, in batches of rows, when its rows are read.</summary>
    public IDataView Transform(IDataView input) => new ScoredDataView(input, this);

    /// <summary>A mapper that scores single rows, as PredictionEngine does.</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new ScoringRowMapper(inputSchema, this);

    /// <summary>
    /// Frees the model's native tensors, after any scoring under way on other threads has ended; later calls do nothing.
    /// A <see cref="PredictionEngine{TSrc, TDst}"/> calls this when disposed unless created with
    /// <see cref="PredictionEngineOptions.OwnsTransformer"/> false, which engines that share one model need.
    /// </summary>
    public void Dispose() => _lifetime.Dispose(_scorer);

    /// <summary>Scores <paramref name="rows"/> rows of <paramref name="batch"/>; safe to call from several threads at once, each with its own batch.</summary>
    internal void Score(IScoringBatch batch, int rows, float[] outputs) => _lifetime.Use(() => batch.Score(rows, outputs));

    void IScoringTransformer.Score(IScoringBatch batch, int rows, float[] outputs) => Score(batch, rows, outputs);

    void ICanSaveModel.Save(ModelSaveContext ctx) => _lifetime.Use(() => Save(ctx));

    /// <summary>Writes the model's version, fields and streams into <paramref name="ctx"/>.</summary>
    private protected abstract void Save(ModelSaveContext ctx);
}
