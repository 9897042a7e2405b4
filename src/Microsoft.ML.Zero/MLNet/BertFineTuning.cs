using Microsoft.ML.Data;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Engine;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// What every BERT trainer's Fit shares: the checkpoint and its tokenizer, the text columns, the engine settings from
/// the options (AdamW, Hugging Face's no-decay rule, precision Auto by default), loading the pretrained encoder on rank
/// 0, length grouping, and the scorer of a trained replica. A trainer gives its head's size, its loss and its outputs.
/// </summary>
internal sealed class BertFineTuning
{
    private readonly ZeroBertOptions _options;
    private readonly ZeroBertOptions _defaults;

    /// <param name="options">The trainer's options, validated.</param>
    /// <param name="defaults">A new options object of the same type: the values the DeepSpeed settings are compared with.</param>
    /// <param name="input">The training data.</param>
    /// <param name="regression">Whether the label is a Single value rather than a key.</param>
    public BertFineTuning(ZeroBertOptions options, ZeroBertOptions defaults, IDataView input, bool regression)
        : this(options, defaults, new TextColumns(input, options.Sentence1Column, options.Sentence2Column, options.LabelColumn, regression))
    {
    }

    /// <summary>A fine-tune whose trainer reads its own columns (token classification): <see cref="Columns"/> is not there.</summary>
    public BertFineTuning(ZeroBertOptions options, ZeroBertOptions defaults) : this(options, defaults, columns: null)
    {
    }

    private BertFineTuning(ZeroBertOptions options, ZeroBertOptions defaults, TextColumns? columns)
    {
        _options = options;
        _defaults = defaults;
        _columns = columns;
        Checkpoint = BertCheckpoint.Open(options.CheckpointPath!);
        string optionsName = options.GetType().Name;
        Checkpoint.RequireSequenceLength(options.MaxSequenceLength, $"{optionsName}.{nameof(ZeroBertOptions.MaxSequenceLength)}");
        TorchRuntime.EnsureLoaded();
        Encoder = new BertTextEncoder(File.ReadAllBytes(Checkpoint.VocabPath), Checkpoint.LowerCase, options.MaxSequenceLength, Checkpoint.VocabPath, options.LongText);
    }

    private readonly TextColumns? _columns;

    /// <summary>The text columns and label of a sequence classification or regression.</summary>
    public TextColumns Columns => _columns ?? throw new InvalidOperationException("This fine-tune reads its own columns.");

    public BertCheckpoint Checkpoint { get; }

    public BertTextEncoder Encoder { get; }

    /// <summary>
    /// Fine-tunes a BERT with a head of <see cref="TextColumns.ClassCount"/> outputs and returns every local replica.
    /// </summary>
    /// <param name="run">The trainer's run.</param>
    /// <param name="classes">The label's classes in key order (none for a regression).</param>
    /// <param name="task">What the model becomes, for the log ("a 2-class classifier").</param>
    /// <param name="lossOf">The head's loss, given the classification loss the options ask for.</param>
    /// <param name="validation">Scores the validation set during training, or null.</param>
    /// <param name="countLabels">Counts the training rows per class, for balanced class weights.</param>
    public BertClassifier[] Train(TrainingRun run, IReadOnlyList<string> classes, string task, Func<ClassificationLoss, OutputLoss> lossOf,
        IValidation? validation, Func<long[]> countLabels)
    {
        var config = Checkpoint.Config;
        return Train(run, classes, task, generator => new BertClassifier(config, Columns.ClassCount, generator), model => model.Encoder, Columns.CountValidRows,
            (model, rows, rowCount, loss) =>
            {
                var (encoded, labels) = Columns.ReadRows(rows, rowCount, Encoder.EncodeWindows);
                return new TextEpochShard(model, encoded, labels, Encoder.PaddingId, lossOf(loss));
            },
            validation, countLabels,
            rowCount => Columns.TokenCounts(rowCount, (a, b) => Encoder.EncodeWindows(a, b).Sum(window => window.Ids.Length)));
    }

    /// <summary>
    /// Fine-tunes a BERT under the head <paramref name="createModel"/> builds and returns every local replica: the
    /// shared run, with the trainer's model, rows and loss.
    /// </summary>
    /// <param name="run">The trainer's run.</param>
    /// <param name="classes">The label's classes in key order (none for a regression).</param>
    /// <param name="task">What the model becomes, for the log.</param>
    /// <param name="createModel">One replica, given its dropout generator.</param>
    /// <param name="encoderOf">The replica's encoder, into which rank 0 loads the pretrained weights.</param>
    /// <param name="countRows">Counts the valid training rows.</param>
    /// <param name="readEpoch">A rank's rows of an epoch (see <see cref="TrainingRun.Train{TModel}"/>).</param>
    /// <param name="validation">Scores the validation set during training, or null.</param>
    /// <param name="countLabels">Counts the training labels per class, for balanced class weights.</param>
    /// <param name="tokenCounts">Every row's token count by position, for <see cref="ZeroBertOptions.GroupByLength"/>.</param>
    public TModel[] Train<TModel>(TrainingRun run, IReadOnlyList<string> classes, string task, Func<TorchSharp.torch.Generator, TModel> createModel,
        Func<TModel, BertModel> encoderOf, Func<long> countRows, Func<TModel, int[], long, ClassificationLoss, IEpochShard> readEpoch,
        IValidation? validation, Func<long[]> countLabels, Func<long, int[]> tokenCounts)
        where TModel : TorchSharp.torch.nn.Module
    {
        var config = Checkpoint.Config;
        string optionsName = _options.GetType().Name;
        return run.Train(classes, countRows,
            worldSize => EngineConfiguration.Resolve(optionsName, _options.DeepSpeed ?? new DeepSpeedOptions { Precision = ZeroPrecision.Auto }, TrainerValues(_options),
                TrainerValues(_defaults), worldSize, IsBiasOrLayerNorm),
            $"Fine-tuning {Path.GetFileName(Path.TrimEndingDirectorySeparator(Checkpoint.Directory))} ({config.NumHiddenLayers} layers, hidden {config.HiddenSize}) as {task}",
            createModel,
            (first, mainProcess) =>
            {
                // Rank 0 loads the pretrained encoder; the engine broadcasts its weights to the others.
                if (mainProcess)
                    Checkpoint.LoadInto(encoderOf(first));
            },
            readEpoch, validation, countLabels,
            // One extra pass tokenizes every row once for its length (all its windows); each epoch still encodes the rows it trains on.
            _options.GroupByLength ? rowCount => new LengthGroupedOrder(tokenCounts(rowCount), _options.GroupByLengthWindow) : null);
    }

    /// <summary>The scorer of a trained replica: class probabilities, or with <paramref name="regression"/> the head's value.</summary>
    public BertScorer Scorer(BertClassifier model, bool regression = false) =>
        new(model, Encoder, _options.Sentence1ColumnName, _options.Sentence2ColumnName, regression);

    // The BERT options name no optimizer, betas, eps or momentum: AdamW with PyTorch's defaults unless the DeepSpeed settings say otherwise.
    private static TrainerValues TrainerValues(ZeroBertOptions o) =>
        Engine.TrainerValues.AdamW(o.BatchSize, o.LearningRate, o.WeightDecay) with { Scheduler = o.LearningRateSchedulerType, WarmupRatio = o.WarmupRatio };

    // Hugging Face's fine-tuning recipe: no weight decay on biases and LayerNorm weights.
    private static bool IsBiasOrLayerNorm(string parameterName) =>
        parameterName.EndsWith(".bias", StringComparison.Ordinal) || parameterName.Contains("LayerNorm.", StringComparison.Ordinal);

    /// <summary>Checks the text columns in a pipeline's schema shape.</summary>
    public static void CheckTextColumns(ZeroBertOptions options, Dictionary<string, SchemaShape.Column> columns)
    {
        foreach (var option in new[] { options.Sentence1Column, options.Sentence2Column })
        {
            if (option is not { } column)
                continue;
            if (!columns.TryGetValue(column.ColumnName, out var text))
                throw ColumnChecks.MissingColumnError(column, "text", columns.Keys);
            if (text.Kind != SchemaShape.Column.VectorKind.Scalar || text.ItemType is not TextDataViewType)
                throw new ArgumentOutOfRangeException(column.Parameter, $"Text column '{column.ColumnName}' has type {text.GetTypeString()}; expected String (text).");
        }
    }
}
