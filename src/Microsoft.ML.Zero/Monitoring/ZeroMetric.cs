namespace Microsoft.ML.Zero;

/// <summary>
/// A validation metric, which <see cref="ZeroTrainingOptions.MetricForBestModel"/> picks the best model and stops early by
/// [Hugging Face's <c>metric_for_best_model</c>]. Each is computed exactly over every validation row.
/// </summary>
public enum ZeroMetric
{
    /// <summary>The share of rows whose predicted class is the label (ML.NET's MicroAccuracy); higher is better.</summary>
    Accuracy,

    /// <summary>
    /// The mean over classes of each class's F1 score, 2TP / (2TP + FP + FN), over the classes that occur as a label or a
    /// prediction (scikit-learn's <c>f1_score(average="macro")</c>); higher is better. Unlike accuracy it weighs a rare
    /// class as much as a common one.
    /// </summary>
    MacroF1,

    /// <summary>The mean of -ln(probability of the label), probabilities clipped at 1e-15 as ML.NET's LogLoss does; lower is better.</summary>
    LogLoss,

    /// <summary>A regression's mean of (score - label)^2 (ML.NET's MeanSquaredError); lower is better.</summary>
    MeanSquaredError,

    /// <summary>A regression's Pearson correlation of scores and labels, -1 to 1; higher is better.</summary>
    PearsonCorrelation,

    /// <summary>
    /// A regression's Spearman rank correlation of scores and labels (Pearson's of their ranks, ties given their mean
    /// rank, as SciPy's <c>spearmanr</c>), -1 to 1; higher is better. The usual metric of sentence similarity (STS-B).
    /// </summary>
    SpearmanCorrelation,
}
