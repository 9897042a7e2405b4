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
public sealed class ZeroRegressionTransformer : ZeroModelTransformer
{
    internal const string LoaderSignature = "ZeroRegressor";

    internal ZeroRegressionTransformer(BertScorer scorer, RegressionColumns outputs, int scoringBatchSize)
        : base(scorer, outputs, scoringBatchSize)
    {
        Scorer = scorer;
        Outputs = outputs;
    }

    internal BertScorer Scorer { get; }

    internal RegressionColumns Outputs { get; }

    private protected override void Save(ModelSaveContext ctx)
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
