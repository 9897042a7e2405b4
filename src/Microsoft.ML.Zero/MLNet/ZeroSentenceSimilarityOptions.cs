using Microsoft.ML.Zero.Monitoring;
namespace Microsoft.ML.Zero;

/// <summary>
/// Options of <see cref="ZeroSentenceSimilarityTrainer"/>: fine-tunes a pretrained BERT (a local Hugging Face folder) to
/// score how alike two sentences are, a regression on a Single label (Hugging Face's BertForSequenceClassification
/// with one label, trained on squared error), data-parallel on <see cref="ZeroTrainingOptions.WorldSize"/> ranks.
/// Names follow Microsoft.ML.TorchSharp's SentenceSimilarityTrainer.Options. The model adds one column, Score (a
/// Single); <see cref="ZeroTrainingOptions.PredictionColumnName"/>, ClassWeights and LabelSmoothingFactor are a
/// classifier's and are not used. The best model is picked by <see cref="ZeroMetric.SpearmanCorrelation"/> unless
/// <see cref="ZeroTrainingOptions.MetricForBestModel"/> names another regression metric.
/// </summary>
public sealed class ZeroSentenceSimilarityOptions : ZeroBertOptions
{
    /// <summary>Options with Microsoft.ML.TorchSharp's column names: Sentence1 and Sentence2, Label, Score.</summary>
    public ZeroSentenceSimilarityOptions()
    {
        Sentence2ColumnName = "Sentence2";
        MetricForBestModel = ZeroMetric.SpearmanCorrelation;
    }

    internal void Validate()
    {
        ValidateBertOptions();
        Require(!string.IsNullOrEmpty(Sentence2ColumnName), nameof(Sentence2ColumnName), Sentence2ColumnName ?? "null", "the second sentence's column: the model scores pairs");
        Require(!ValidationMetrics.IsClassification(MetricForBestModel), nameof(MetricForBestModel), MetricForBestModel,
            "a regression metric: SpearmanCorrelation, PearsonCorrelation or MeanSquaredError");
        Require(ClassWeights is null, nameof(ClassWeights), ClassWeights?.ToString() ?? "", "none: a regression has no classes");
        Require(LabelSmoothingFactor == 0, nameof(LabelSmoothingFactor), LabelSmoothingFactor, "0: a regression has no classes to smooth over");
    }
}
