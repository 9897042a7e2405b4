using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Models.Bert;

namespace Microsoft.ML.Zero;

/// <summary>
/// Fine-tunes a pretrained BERT as a text classifier (BertForSequenceClassification), data-parallel on in-process ranks.
/// </summary>
public sealed class ZeroTextClassificationTrainer : IEstimator<ZeroTransformer>
{
    private readonly TrainingRun _run;
    private readonly ZeroTextClassificationOptions _options;

    internal ZeroTextClassificationTrainer(MLContext mlContext, ZeroTextClassificationOptions options)
    {
        _run = new TrainingRun(mlContext, nameof(ZeroTextClassificationTrainer), options);
        _options = options;
    }

    /// <summary>Fine-tunes on <paramref name="input"/> and returns the classifier (rank 0's replica).</summary>
    public ZeroTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        _options.Validate();
        var fineTuning = new BertFineTuning(_options, new ZeroTextClassificationOptions(), input, regression: false);
        var columns = fineTuning.Columns;
        var labels = LabelKeyValues.FromLabel(columns.Label, columns.ClassCount);
        var outputs = new ScoreColumns(_options.ScoreColumnName, _options.PredictionColumnName, labels);
        ZeroTransformer TransformerOf(BertClassifier model) => new(fineTuning.Scorer(model), outputs, _options.ScoringBatchSize);

        var replicas = fineTuning.Train(_run, labels.Names.Select(name => name.ToString()).ToArray(), $"a {columns.ClassCount}-class classifier", loss => loss.Sum,
            _run.ClassificationValidation<BertClassifier>(outputs, TransformerOf), () => LabelCounts.Count(input, columns.Label, columns.ClassCount));
        foreach (var replica in replicas.Skip(1))
            replica.Dispose();
        return TransformerOf(replicas[0]);
    }

    /// <summary>Checks the input columns and returns the schema the trained model will produce.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        _options.Validate();
        var columns = inputSchema.ToDictionary(c => c.Name);
        BertFineTuning.CheckTextColumns(_options, columns);
        return ScoreColumns.AppendShape(columns, _options.LabelColumn, _options.ScoreColumnName, _options.PredictionColumnName);
    }
}
