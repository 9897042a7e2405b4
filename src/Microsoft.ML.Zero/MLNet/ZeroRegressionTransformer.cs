using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Zero;
using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Tensors;

[assembly: LoadableClass(typeof(ZeroRegressionTransformer), null, typeof(SignatureLoadModel),
    "Microsoft.ML.Zero regression", ZeroRegressionTransformer.LoaderSignature)]

namespace Microsoft.ML.Zero;

/// <summary>
/// A trained regression (sentence similarity): appends its predicted value as Score, a Single, to its input, in the
/// form <c>mlContext.Regression.Evaluate</c> reads. Saves into and loads from a standard ML.NET model zip.
/// </summary>
public sealed class ZeroRegressionTransformer : ITransformer, IDisposable, IScoringTransformer
{
    internal const string LoaderSignature = "ZeroRegressor";

    private readonly ModelLifetime _lifetime;

    internal ZeroRegressionTransformer(BertScorer scorer, RegressionColumns outputs, int scoringBatchSize)
    {
        _lifetime = new ModelLifetime(nameof(ZeroRegressionTransformer), scorer.Kind);
        Scorer = scorer;
        Outputs = outputs;
        ScoringBatchSize = scoringBatchSize;
    }

    /// <summary>Always true: each row is scored on its own, so PredictionEngine can use this transformer.</summary>
    public bool IsRowToRowMapper => true;

    internal BertScorer Scorer { get; }

    internal RegressionColumns Outputs { get; }

    internal int ScoringBatchSize { get; }

    IRowScorer IScoringTransformer.Scorer => Scorer;

    IOutputColumns IScoringTransformer.Outputs => Outputs;

    int IScoringTransformer.ScoringBatchSize => ScoringBatchSize;

    /// <summary>The input schema with Score added.</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        Scorer.CheckInputs(inputSchema);
        return Outputs.Append(inputSchema);
    }

    /// <summary>Scores <paramref name="input"/> lazily, in batches of rows, when its rows are read.</summary>
    public IDataView Transform(IDataView input) => new ScoredDataView(input, this);

    /// <summary>A mapper that scores single rows, as PredictionEngine does.</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new ScoringRowMapper(inputSchema, this);

    /// <summary>
    /// Frees the model's native tensors, after any scoring under way on other threads has ended; later calls do nothing.
    /// Engines that share one model need <see cref="PredictionEngineOptions.OwnsTransformer"/> false.
    /// </summary>
    public void Dispose() => _lifetime.Dispose(Scorer);

    /// <summary>Scores <paramref name="rows"/> rows of <paramref name="batch"/>; safe to call from several threads at once, each with its own batch.</summary>
    internal void Score(IScoringBatch batch, int rows, float[] outputs) => _lifetime.Use(() => batch.Score(rows, outputs));

    void IScoringTransformer.Score(IScoringBatch batch, int rows, float[] outputs) => Score(batch, rows, outputs);

    void ICanSaveModel.Save(ModelSaveContext ctx) => _lifetime.Use(() => Save(ctx));

    private void Save(ModelSaveContext ctx)
    {
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        ctx.SaveNonEmptyString(Outputs.ScoreColumnName);
        ctx.Writer.Write(ScoringBatchSize);
        ctx.SaveNonEmptyString(Scorer.Kind);
        Scorer.Save(ctx);
    }

    // Called by ML.NET's component catalog (through LoadableClass) when a model zip is loaded.
    private static ZeroRegressionTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ctx.CheckAtModel(GetVersionInfo());
        TorchRuntime.EnsureLoaded();
        return ModelZip.ReadFields(ctx, () => Read(ctx));
    }

    private static ZeroRegressionTransformer Read(ModelLoadContext ctx)
    {
        string scoreColumnName = ctx.LoadNonEmptyString();
        int scoringBatchSize = ModelZip.ReadScoringBatchSize(ctx);
        string kind = ctx.LoadNonEmptyString();
        if (kind != BertScorer.ModelKind)
            throw new InvalidDataException($"The model holds a '{kind}' regression, which this version of Microsoft.ML.Zero cannot load.");
        return new ZeroRegressionTransformer(BertScorer.Load(ctx, labelCount: 1, recordsLongText: true, regression: true), new RegressionColumns(scoreColumnName), scoringBatchSize);
    }

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "ZEROREGR",
        verWrittenCur: 0x00010001,
        verReadableCur: 0x00010001,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(ZeroRegressionTransformer).Assembly.FullName);
}
