using System.Globalization;

namespace Microsoft.ML.Zero.Monitoring;

/// <summary>The metrics of one evaluation, over every validation row of every rank.</summary>
internal sealed class ValidationMetrics
{
    public ValidationMetrics(long rows, IReadOnlyDictionary<ZeroMetric, double> values)
    {
        Rows = rows;
        Values = values;
    }

    /// <summary>The validation rows scored (rows without a label are not counted, as in ML.NET's evaluators).</summary>
    public long Rows { get; }

    public IReadOnlyDictionary<ZeroMetric, double> Values { get; }

    public double this[ZeroMetric metric] => Values.TryGetValue(metric, out double value) ? value
        : throw new ArgumentException($"The validation metrics hold {string.Join(", ", Values.Keys)}, not {metric}.", nameof(metric));

    public static bool GreaterIsBetter(ZeroMetric metric) => metric is not (ZeroMetric.LogLoss or ZeroMetric.MeanSquaredError);

    /// <summary>The metrics of a classifier: the others belong to a regression.</summary>
    public static bool IsClassification(ZeroMetric metric) => metric is ZeroMetric.Accuracy or ZeroMetric.MacroF1 or ZeroMetric.LogLoss;

    /// <summary>Each metric's name in the log ("accuracy 0.9125, macro F1 0.9120, log-loss 0.2214").</summary>
    public string Describe() => string.Join(", ", Values.Select(v => string.Create(CultureInfo.InvariantCulture, $"{LogName(v.Key)} {v.Value:F4}")));

    /// <summary>A metric's name in the log.</summary>
    public static string LogName(ZeroMetric metric) => metric switch
    {
        ZeroMetric.Accuracy => "accuracy",
        ZeroMetric.MacroF1 => "macro F1",
        ZeroMetric.LogLoss => "log-loss",
        ZeroMetric.MeanSquaredError => "MSE",
        ZeroMetric.PearsonCorrelation => "Pearson",
        ZeroMetric.SpearmanCorrelation => "Spearman",
        _ => metric.ToString(),
    };

    /// <summary>A metric's name in the metric files (after Hugging Face's eval_ names).</summary>
    public static string FileName(ZeroMetric metric) => metric switch
    {
        ZeroMetric.Accuracy => "accuracy",
        ZeroMetric.MacroF1 => "macro_f1",
        ZeroMetric.LogLoss => "log_loss",
        ZeroMetric.MeanSquaredError => "mse",
        ZeroMetric.PearsonCorrelation => "pearson",
        ZeroMetric.SpearmanCorrelation => "spearman",
        _ => metric.ToString().ToLowerInvariant(),
    };
}
