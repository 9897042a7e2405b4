using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.Models.Bert;

namespace Microsoft.ML.Zero;

/// <summary>
/// Fine-tunes a pretrained BERT to score the similarity of two sentences (a regression on a Single label),
/// data-parallel on in-process ranks or one process per rank under mpirun.
/// </summary>
public sealed class ZeroSentenceSimilarityTrainer : IEstimator<ZeroRegressionTransformer>
{
    private readonly TrainingRun _run;
    private readonly ZeroSentenceSimilarityOptions _options;

    internal ZeroSentenceSimilarityTrainer(MLContext mlContext, ZeroSentenceSimilarityOptions options)
    {
        _run = new TrainingRun(mlContext, nameof(ZeroSentenceSimilarityTrainer), options);
        _options = options;
    }

    /// <summary>Fine-tunes on <paramref name="input"/> and returns the regression (rank 0's replica).</summary>
    public ZeroRegressionTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        _options.Validate();
        var fineTuning = new BertFineTuning(_options, new ZeroSentenceSimilarityOptions(), input, regression: true);
        var outputs = new RegressionColumns(_options.ScoreColumnName);
        ZeroRegressionTransformer TransformerOf(BertClassifier model) => new(fineTuning.Scorer(model, regression: true), outputs, _options.ScoringBatchSize);

        var replicas = fineTuning.Train(_run, Array.Empty<string>(), "a sentence-similarity regression", _ => RegressionLoss.SquaredErrorSum,
            _run.RegressionValidation<BertClassifier>(TransformerOf), Array.Empty<long>);
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
        return RegressionColumns.AppendShape(columns, _options.LabelColumn, _options.ScoreColumnName);
    }
}
