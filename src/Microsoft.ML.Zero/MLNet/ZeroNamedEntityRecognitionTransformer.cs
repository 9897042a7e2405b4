using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Zero;
using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Tensors;

[assembly: LoadableClass(typeof(ZeroNamedEntityRecognitionTransformer), null, typeof(SignatureLoadModel),
    "Microsoft.ML.Zero named entity recognition", ZeroNamedEntityRecognitionTransformer.LoaderSignature)]

namespace Microsoft.ML.Zero;

/// <summary>
/// A trained token classifier (named entity recognition, part-of-speech tagging): appends PredictedLabel, a vector of
/// keys with one key per word of the sentence (split on spaces), carrying the training label's key values, so that
/// MapKeyToValue gives the tags. Words past the model's maximum length get the missing key 0. Saves into and loads
/// from a standard ML.NET model zip.
/// </summary>
public sealed class ZeroNamedEntityRecognitionTransformer : ITransformer, IDisposable, IScoringTransformer
{
    internal const string LoaderSignature = "ZeroTokenTagger";

    private readonly ModelLifetime _lifetime;

    internal ZeroNamedEntityRecognitionTransformer(TokenClassificationScorer scorer, WordTagColumns outputs, int scoringBatchSize)
    {
        _lifetime = new ModelLifetime(nameof(ZeroNamedEntityRecognitionTransformer), scorer.Kind);
        Scorer = scorer;
        Outputs = outputs;
        ScoringBatchSize = scoringBatchSize;
    }

    /// <summary>Always true: each row is scored on its own, so PredictionEngine can use this transformer.</summary>
    public bool IsRowToRowMapper => true;

    internal TokenClassificationScorer Scorer { get; }

    internal WordTagColumns Outputs { get; }

    internal int ScoringBatchSize { get; }

    IRowScorer IScoringTransformer.Scorer => Scorer;

    IOutputColumns IScoringTransformer.Outputs => Outputs;

    int IScoringTransformer.ScoringBatchSize => ScoringBatchSize;

    /// <summary>The input schema with PredictedLabel added.</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        Scorer.CheckInputs(inputSchema);
        return Outputs.Append(inputSchema);
    }

    /// <summary>Tags <paramref name="input"/> lazily, in batches of rows, when its rows are read.</summary>
    public IDataView Transform(IDataView input) => new ScoredDataView(input, this);

    /// <summary>A mapper that tags single rows, as PredictionEngine does.</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new ScoringRowMapper(inputSchema, this);

    /// <summary>
    /// Frees the model's native tensors, after any scoring under way on other threads has ended; later calls do nothing.
    /// Engines that share one model need <see cref="PredictionEngineOptions.OwnsTransformer"/> false.
    /// </summary>
    public void Dispose() => _lifetime.Dispose(Scorer);

    void IScoringTransformer.Score(IScoringBatch batch, int rows, float[] outputs) => _lifetime.Use(() => batch.Score(rows, outputs));

    void ICanSaveModel.Save(ModelSaveContext ctx) => _lifetime.Use(() => Save(ctx));

    // Format, in order: PredictedLabel's name, the scoring batch size, the tag keys' values, the model kind, then the scorer's fields and streams.
    private void Save(ModelSaveContext ctx)
    {
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        ctx.SaveNonEmptyString(Outputs.PredictionColumnName);
        ctx.Writer.Write(ScoringBatchSize);
        Outputs.Tags.Save(ctx.Writer);
        ctx.SaveNonEmptyString(Scorer.Kind);
        Scorer.Save(ctx);
    }

    // Called by ML.NET's component catalog (through LoadableClass) when a model zip is loaded.
    private static ZeroNamedEntityRecognitionTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ctx.CheckAtModel(GetVersionInfo());
        TorchRuntime.EnsureLoaded();
        return ModelZip.ReadFields(ctx, () => Read(ctx));
    }

    private static ZeroNamedEntityRecognitionTransformer Read(ModelLoadContext ctx)
    {
        string predictionColumnName = ctx.LoadNonEmptyString();
        int scoringBatchSize = ModelZip.ReadScoringBatchSize(ctx);
        var tags = LabelKeyValues.Load(ctx.Reader, ModelZip.Source(ctx));
        string kind = ctx.LoadNonEmptyString();
        if (kind != TokenClassificationScorer.ModelKind)
            throw new InvalidDataException($"The model holds a '{kind}' tagger, which this version of Microsoft.ML.Zero cannot load.");
        return new ZeroNamedEntityRecognitionTransformer(TokenClassificationScorer.Load(ctx, tags.Count), new WordTagColumns(predictionColumnName, tags), scoringBatchSize);
    }

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "ZEROTAGS",
        verWrittenCur: 0x00010001,
        verReadableCur: 0x00010001,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(ZeroNamedEntityRecognitionTransformer).Assembly.FullName);
}
