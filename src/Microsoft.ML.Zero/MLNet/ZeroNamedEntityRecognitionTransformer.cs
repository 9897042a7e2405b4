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
/// MapKeyToValue gives the tags. Words the model does not read (past its maximum length when it truncates, past its
/// last window when it reads in sliding windows) get the missing key 0. Saves into and loads
/// from a standard ML.NET model zip.
/// </summary>
public sealed class ZeroNamedEntityRecognitionTransformer : ZeroModelTransformer
{
    internal const string LoaderSignature = "ZeroTokenTagger";

    // The first format that records the long-text handling; taggers saved before it read long sentences truncated.
    private const uint LongTextFormat = 0x00010002;

    internal ZeroNamedEntityRecognitionTransformer(TokenClassificationScorer scorer, WordTagColumns outputs, int scoringBatchSize)
        : base(scorer, outputs, scoringBatchSize)
    {
        Scorer = scorer;
        Outputs = outputs;
    }

    internal TokenClassificationScorer Scorer { get; }

    internal WordTagColumns Outputs { get; }

    // Format, in order: PredictedLabel's name, the scoring batch size, the tag keys' values, the model kind, then the scorer's fields and streams.
    private protected override void Save(ModelSaveContext ctx)
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
        return new ZeroNamedEntityRecognitionTransformer(TokenClassificationScorer.Load(ctx, tags.Count, recordsLongText: ctx.Header.ModelVerWritten >= LongTextFormat), new WordTagColumns(predictionColumnName, tags), scoringBatchSize);
    }

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "ZEROTAGS",
        verWrittenCur: LongTextFormat,
        verReadableCur: LongTextFormat,
        verWeCanReadBack: 0x00010001,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(ZeroNamedEntityRecognitionTransformer).Assembly.FullName);
}
