using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML.Zero.Models;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// Writes a trained <see cref="ZeroTransformer"/> as an ONNX graph and, into a folder, the graph with what a serving app
/// needs beside it: <see cref="ManifestFileName"/> (labels, tokenization) and, for BERT, the vocabulary.
/// </summary>
internal static class OnnxExport
{
    public const string GraphFileName = "model.onnx", ManifestFileName = "model.json", VocabularyFileName = "vocab.txt";

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>Writes the graph alone into <paramref name="stream"/>.</summary>
    public static void ToStream(ITransformer model, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var graph = Graph(Find(model));
        stream.Write(graph);
    }

    /// <summary>
    /// Writes <see cref="GraphFileName"/>, <see cref="VocabularyFileName"/> (BERT) and then <see cref="ManifestFileName"/>
    /// into <paramref name="directory"/>, creating it; each file is written whole or not at all.
    /// </summary>
    public static void ToDirectory(ITransformer model, string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var transformer = Find(model);
        var graph = Graph(transformer);
        Directory.CreateDirectory(directory);
        DurableFiles.Replace(Path.Combine(directory, GraphFileName), stream => stream.Write(graph));
        if (transformer.Scorer is BertScorer bert)
            DurableFiles.Replace(Path.Combine(directory, VocabularyFileName), stream => stream.Write(bert.Encoder.Vocabulary));
        // Last: a folder with a manifest holds the files it names.
        var manifest = JsonSerializer.SerializeToUtf8Bytes(Manifest(transformer), JsonOptions);
        DurableFiles.Replace(Path.Combine(directory, ManifestFileName), stream => stream.Write(manifest));
    }

    /// <summary>The one Microsoft.ML.Zero model in <paramref name="model"/>: the transformer itself, or one in a chain (a Fit pipeline).</summary>
    private static ZeroTransformer Find(ITransformer model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var found = Flatten(model).OfType<ZeroTransformer>().ToList();
        return found.Count switch
        {
            1 => found[0],
            0 => throw new ArgumentException($"The model ({model.GetType().Name}) holds no Microsoft.ML.Zero classifier to export; pass what " +
                "a Zero trainer's Fit returned, or a pipeline (TransformerChain) that holds it.", nameof(model)),
            _ => throw new ArgumentException($"The model holds {found.Count} Microsoft.ML.Zero classifiers; export each on its own.", nameof(model)),
        };

        static IEnumerable<ITransformer> Flatten(ITransformer transformer) =>
            transformer is IEnumerable<ITransformer> chain ? chain.SelectMany(Flatten) : new[] { transformer };
    }

    private static byte[] Graph(ZeroTransformer transformer) => transformer.Scorer switch
    {
        BertScorer bert => BertOnnxExport.Build(bert.Model),
        TabularScorer { Model: MlpClassifier mlp } => MlpOnnxExport.Build(mlp),
        TabularScorer custom => throw new NotSupportedException(
            $"The model was trained with the model factory {custom.Factory.GetType().FullName}; ONNX export covers the built-in MLP and BERT classifiers, " +
            "not user-defined TorchSharp modules. Score it with ML.NET, or rebuild the module in a framework that exports ONNX."),
        var other => throw new NotSupportedException($"A '{other.Kind}' model cannot be exported to ONNX."),
    };

    private static OnnxManifest Manifest(ZeroTransformer transformer)
    {
        var labels = transformer.Outputs.Labels.Names.Select(name => name.ToString()).ToArray();
        var outputs = new[] { OnnxOutputs.Logits, OnnxOutputs.Probabilities };
        return transformer.Scorer switch
        {
            BertScorer bert => new OnnxManifest(
                OnnxManifest.BertTask, GraphFileName, labels, transformer.Outputs.ScoreColumnName, transformer.Outputs.PredictionColumnName,
                new[] { BertOnnxExport.InputIds, BertOnnxExport.AttentionMask, BertOnnxExport.TokenTypeIds }, outputs)
            {
                Vocabulary = VocabularyFileName,
                Sentence1Column = bert.Sentence1ColumnName,
                Sentence2Column = bert.Sentence2ColumnName,
                DoLowerCase = bert.Encoder.LowerCase,
                MaxSequenceLength = bert.Encoder.MaxSequenceLength,
                LongText = new OnnxLongText(bert.Encoder.LongText.Handling, bert.Encoder.LongText.WindowStride, bert.Encoder.LongText.MaxWindowsPerRow),
            },
            TabularScorer tabular => new OnnxManifest(
                OnnxManifest.MlpTask, GraphFileName, labels, transformer.Outputs.ScoreColumnName, transformer.Outputs.PredictionColumnName,
                new[] { MlpOnnxExport.FeaturesInput }, outputs)
            {
                FeatureColumn = tabular.FeatureColumnName,
                FeatureCount = tabular.FeatureCount,
            },
            var other => throw new NotSupportedException($"A '{other.Kind}' model cannot be exported to ONNX."),
        };
    }
}

/// <summary>
/// model.json: what scoring the graph needs besides it. Labels are the class names in the order of the graph's outputs;
/// a BERT model's text is tokenized with BERT WordPiece over vocab.txt, lower-cased when <see cref="DoLowerCase"/>,
/// [CLS] a [SEP] (b [SEP]) in at most <see cref="MaxSequenceLength"/> tokens, read as <see cref="LongText"/> says; a row
/// of several windows gets the mean of their logits, then a softmax.
/// </summary>
internal sealed record OnnxManifest(string Task, string Graph, string[] Labels, string ScoreColumn, string PredictedLabelColumn, string[] Inputs, string[] Outputs)
{
    public const string BertTask = "text_classification", MlpTask = "tabular_classification";

    /// <summary>The layout of this file; a reader checks it before the rest.</summary>
    public int FormatVersion { get; init; } = 1;

    public string? Vocabulary { get; init; }

    public string? Sentence1Column { get; init; }

    public string? Sentence2Column { get; init; }

    public bool? DoLowerCase { get; init; }

    public int? MaxSequenceLength { get; init; }

    public OnnxLongText? LongText { get; init; }

    public string? FeatureColumn { get; init; }

    public int? FeatureCount { get; init; }
}

/// <summary>A BERT model's long-text handling: truncate, head_and_tail or sliding_windows, with the windows' stride and cap.</summary>
internal sealed record OnnxLongText(ZeroLongTextHandling Handling, int WindowStride, int MaxWindowsPerRow);
