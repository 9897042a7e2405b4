using Microsoft.ML.Data;
using TorchSharp;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Engine;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero;

/// <summary>
/// Fine-tunes a pretrained BERT as a text classifier (BertForSequenceClassification), data-parallel on in-process ranks.
/// </summary>
public sealed class ZeroTextClassificationTrainer : IEstimator<ZeroTransformer>
{
    private readonly MLContext _mlContext;
    private readonly TrainingRun _run;
    private readonly ZeroTextClassificationOptions _options;

    internal ZeroTextClassificationTrainer(MLContext mlContext, ZeroTextClassificationOptions options)
    {
        _mlContext = mlContext;
        _run = new TrainingRun(mlContext, nameof(ZeroTextClassificationTrainer), options);
        _options = options;
    }

    /// <summary>Fine-tunes on <paramref name="input"/> and returns the classifier (rank 0's replica).</summary>
    public ZeroTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        _options.Validate();
        var columns = new TextColumns(input, _options.Sentence1Column, _options.Sentence2Column, _options.LabelColumn);
        var labels = LabelKeyValues.FromLabel(columns.Label, columns.ClassCount);
        var checkpoint = BertCheckpoint.Open(_options.CheckpointPath!);
        checkpoint.RequireSequenceLength(_options.MaxSequenceLength, "ZeroTextClassificationOptions.MaxSequenceLength");
        TorchRuntime.EnsureLoaded();
        var encoder = new BertTextEncoder(File.ReadAllBytes(checkpoint.VocabPath), checkpoint.LowerCase, _options.MaxSequenceLength, checkpoint.VocabPath, _options.LongText);

        var outputs = new ScoreColumns(_options.ScoreColumnName, _options.PredictionColumnName, labels);
        var replicas = _run.Train(labels, columns.CountValidRows,
            worldSize => EngineConfiguration.Resolve(nameof(ZeroTextClassificationOptions), _options.DeepSpeed ?? DefaultDeepSpeed(), TrainerValues(_options),
                TrainerValues(new ZeroTextClassificationOptions()), worldSize, IsBiasOrLayerNorm),
            $"Fine-tuning {Path.GetFileName(Path.TrimEndingDirectorySeparator(checkpoint.Directory))} ({checkpoint.Config.NumHiddenLayers} layers, hidden {checkpoint.Config.HiddenSize}) " +
                $"as a {columns.ClassCount}-class classifier",
            generator => new BertClassifier(checkpoint.Config, columns.ClassCount, generator),
            (first, mainProcess) =>
            {
                // Rank 0 loads the pretrained encoder; the engine broadcasts its weights to the others.
                if (mainProcess)
                    checkpoint.LoadInto(first.Encoder);
            },
            (model, rows, rowCount, loss) =>
            {
                var (encoded, rowLabels) = columns.ReadRows(rows, rowCount, encoder.EncodeWindows);
                return new TextEpochShard(model, encoded, rowLabels, encoder.PaddingId, loss);
            },
            outputs, model => new ZeroTransformer(Scorer(model, encoder), outputs, _options.ScoringBatchSize),
            () => LabelCounts.Count(input, columns.Label, columns.ClassCount),
            // One extra pass tokenizes every row once for its length (all its windows); each epoch still encodes the rows it trains on.
            _options.GroupByLength ? rowCount => new LengthGroupedOrder(columns.TokenCounts(rowCount, (a, b) => encoder.EncodeWindows(a, b).Sum(window => window.Ids.Length)), _options.GroupByLengthWindow) : null);
        foreach (var replica in replicas.Skip(1))
            replica.Dispose();
        return new ZeroTransformer(Scorer(replicas[0], encoder), outputs, _options.ScoringBatchSize);
    }

    private BertScorer Scorer(BertClassifier model, BertTextEncoder encoder) =>
        new(model, encoder, _options.Sentence1ColumnName, _options.Sentence2ColumnName);

    // Without DeepSpeed settings BERT trains in the faster precision of this machine: bf16 where the CPU computes it natively, else fp32.
    private static DeepSpeedOptions DefaultDeepSpeed() => new() { Precision = ZeroPrecision.Auto };

    // The text options name no optimizer, betas, eps or momentum: AdamW with PyTorch's defaults unless the DeepSpeed settings say otherwise.
    private static TrainerValues TrainerValues(ZeroTextClassificationOptions o) =>
        Engine.TrainerValues.AdamW(o.BatchSize, o.LearningRate, o.WeightDecay) with { Scheduler = o.LearningRateSchedulerType, WarmupRatio = o.WarmupRatio };

    // Hugging Face's fine-tuning recipe: no weight decay on biases and LayerNorm weights.
    private static bool IsBiasOrLayerNorm(string parameterName) =>
        parameterName.EndsWith(".bias", StringComparison.Ordinal) || parameterName.Contains("LayerNorm.", StringComparison.Ordinal);

    /// <summary>Checks the input columns and returns the schema the trained model will produce.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        _options.Validate();
        var columns = inputSchema.ToDictionary(c => c.Name);
        foreach (var option in new[] { _options.Sentence1Column, _options.Sentence2Column })
        {
            if (option is not { } column)
                continue;
            if (!columns.TryGetValue(column.ColumnName, out var text))
                throw ColumnChecks.MissingColumnError(column, "text", columns.Keys);
            if (text.Kind != SchemaShape.Column.VectorKind.Scalar || text.ItemType is not TextDataViewType)
                throw new ArgumentOutOfRangeException(column.Parameter, $"Text column '{column.ColumnName}' has type {text.GetTypeString()}; expected String (text).");
        }
        return ScoreColumns.AppendShape(columns, _options.LabelColumn, _options.ScoreColumnName, _options.PredictionColumnName);
    }
}
