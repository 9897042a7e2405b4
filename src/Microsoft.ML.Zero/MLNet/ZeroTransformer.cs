using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Zero;
using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Tensors;

[assembly: LoadableClass(typeof(ZeroTransformer), null, typeof(SignatureLoadModel),
    "Microsoft.ML.Zero classifier", ZeroTransformer.LoaderSignature)]

namespace Microsoft.ML.Zero;

/// <summary>
/// A trained classifier: appends class probabilities (Score) and the predicted class (PredictedLabel) to its input.
/// Saves into and loads from a standard ML.NET model zip that carries everything needed to score.
/// </summary>
public sealed class ZeroTransformer : ZeroModelTransformer
{
    internal const string LoaderSignature = "ZeroClassifier";

    /// <summary>The format version from which BERT models record their long-text handling; older ones load as Truncate.</summary>
    internal const uint LongTextFormat = 0x00010002;

    internal ZeroTransformer(IRowScorer scorer, ScoreColumns outputs, int scoringBatchSize)
        : base(scorer, outputs, scoringBatchSize)
    {
        Scorer = scorer;
        Outputs = outputs;
    }

    /// <summary>The number of classes the model predicts.</summary>
    public int ClassCount => Scorer.ClassCount;

    internal IRowScorer Scorer { get; }

    internal ScoreColumns Outputs { get; }

    private protected override void Save(ModelSaveContext ctx)
    {
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        ctx.SaveNonEmptyString(Outputs.ScoreColumnName);
        ctx.SaveNonEmptyString(Outputs.PredictionColumnName);
        ctx.Writer.Write(ScoringBatchSize);
        Outputs.Labels.Save(ctx.Writer);
        ctx.SaveNonEmptyString(Scorer.Kind);
        Scorer.Save(ctx);
    }

    // Called by ML.NET's component catalog (through LoadableClass) when a model zip is loaded.
    private static ZeroTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ctx.CheckAtModel(GetVersionInfo());
        TorchRuntime.EnsureLoaded();
        return ModelZip.ReadFields(ctx, () => Read(ctx));
    }

    private static ZeroTransformer Read(ModelLoadContext ctx)
    {
        string scoreColumnName = ctx.LoadNonEmptyString();
        string predictionColumnName = ctx.LoadNonEmptyString();
        // Every size read from the zip is checked before a model is built from it (ModelZip).
        int scoringBatchSize = ModelZip.ReadScoringBatchSize(ctx);
        var labels = LabelKeyValues.Load(ctx.Reader, ModelZip.Source(ctx));
        string kind = ctx.LoadNonEmptyString();
        IRowScorer scorer = kind switch
        {
            TabularScorer.MlpKind or TabularScorer.CustomKind => TabularScorer.Load(ctx, kind, labels.Count),
            BertScorer.ModelKind => BertScorer.Load(ctx, labels.Count, recordsLongText: ctx.Header.ModelVerWritten >= LongTextFormat),
            _ => throw new InvalidDataException($"The model holds a '{kind}' classifier, which this version of Microsoft.ML.Zero cannot load."),
        };
        return new ZeroTransformer(scorer, new ScoreColumns(scoreColumnName, predictionColumnName, labels), scoringBatchSize);
    }

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "ZEROCLSF",
        // 0x00010002: BERT models record their long-text handling; a build that reads only 0x00010001 would score them truncated.
        verWrittenCur: LongTextFormat,
        verReadableCur: LongTextFormat,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(ZeroTransformer).Assembly.FullName);
}
