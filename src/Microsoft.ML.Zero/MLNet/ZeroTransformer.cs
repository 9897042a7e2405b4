using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Zero;
using Microsoft.ML.Zero.Models;
using TorchSharp;

[assembly: LoadableClass(typeof(ZeroTransformer), null, typeof(SignatureLoadModel),
    "Microsoft.ML.Zero MLP classifier", ZeroTransformer.LoaderSignature)]

namespace Microsoft.ML.Zero;

/// <summary>
/// A trained classifier: appends class probabilities (Score) and the predicted class (PredictedLabel) to its input.
/// Saves into and loads from a standard ML.NET model zip that carries the weights, shape and label values.
/// </summary>
public sealed class ZeroTransformer : ITransformer, IDisposable
{
    internal const string LoaderSignature = "ZeroMlpClassifier";
    private const string WeightsStreamName = "TorchWeights.bin";

    internal ZeroTransformer(string featureColumnName, MlpScorer scorer, ScoreColumns outputs, int scoringBatchSize)
    {
        FeatureColumnName = featureColumnName;
        Scorer = scorer;
        Outputs = outputs;
        ScoringBatchSize = scoringBatchSize;
    }

    /// <summary>The feature column the model reads.</summary>
    public string FeatureColumnName { get; }

    /// <summary>The number of classes the model predicts.</summary>
    public int ClassCount => Scorer.ClassCount;

    /// <summary>Always true: each row is scored on its own, so PredictionEngine can use this transformer.</summary>
    public bool IsRowToRowMapper => true;

    internal MlpScorer Scorer { get; }

    internal ScoreColumns Outputs { get; }

    internal int ScoringBatchSize { get; }

    /// <summary>The input schema with Score and PredictedLabel added.</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        CheckFeatureColumn(inputSchema);
        return Outputs.Append(inputSchema);
    }

    /// <summary>Scores <paramref name="input"/> lazily, in batches of rows, when its rows are read.</summary>
    public IDataView Transform(IDataView input) => new ScoredDataView(input, this);

    /// <summary>A mapper that scores single rows, as PredictionEngine does.</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new ScoringRowMapper(inputSchema, this);

    /// <summary>Frees the model's native tensors.</summary>
    public void Dispose() => Scorer.Model.Dispose();

    internal DataViewSchema.Column CheckFeatureColumn(DataViewSchema schema)
    {
        var column = schema.GetColumnOrNull(FeatureColumnName) ?? throw new ArgumentOutOfRangeException(nameof(schema),
            $"Could not find feature column '{FeatureColumnName}' in the data to score; the model was trained on it.");
        if (column.Type is not VectorDataViewType { ItemType: NumberDataViewType item, Size: var size } || item != NumberDataViewType.Single || size != Scorer.FeatureCount)
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Feature column '{FeatureColumnName}' has type {column.Type}; the model expects Vector<Single, {Scorer.FeatureCount}>.");
        return column;
    }

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        ctx.SaveNonEmptyString(FeatureColumnName);
        ctx.SaveNonEmptyString(Outputs.ScoreColumnName);
        ctx.SaveNonEmptyString(Outputs.PredictedLabelColumnName);
        ctx.Writer.Write(ScoringBatchSize);
        Scorer.Model.Shape.Save(ctx.Writer);
        Outputs.Labels.Save(ctx.Writer);
        ctx.SaveBinaryStream(WeightsStreamName, writer => Scorer.Model.save(writer));
    }

    // Called by ML.NET's component catalog (through LoadableClass) when a model zip is loaded.
    private static ZeroTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ctx.CheckAtModel(GetVersionInfo());
        TorchRuntime.EnsureLoaded();
        string featureColumnName = ctx.LoadNonEmptyString();
        string scoreColumnName = ctx.LoadNonEmptyString();
        string predictedLabelColumnName = ctx.LoadNonEmptyString();
        int scoringBatchSize = ctx.Reader.ReadInt32();
        var shape = MlpShape.Load(ctx.Reader);
        var labels = LabelKeyValues.Load(ctx.Reader);
        var model = new MlpClassifier(shape, new torch.Generator(0));
        if (!ctx.TryLoadBinaryStream(WeightsStreamName, reader => model.load(reader)))
            throw new InvalidDataException($"The model has no '{WeightsStreamName}' stream; the file is incomplete.");
        return new ZeroTransformer(featureColumnName, new MlpScorer(model), new ScoreColumns(scoreColumnName, predictedLabelColumnName, labels), scoringBatchSize);
    }

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "ZEROMLPC",
        verWrittenCur: 0x00010001,
        verReadableCur: 0x00010001,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(ZeroTransformer).Assembly.FullName);
}
