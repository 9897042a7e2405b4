using Microsoft.ML.Data;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Monitoring;

namespace Microsoft.ML.Zero;

/// <summary>
/// Token-level metrics of a token classifier's output (<see cref="ZeroCatalog.EvaluateNamedEntityRecognition"/>): over
/// every word with a label key, the share tagged right, the macro F1 over the tags, and each tag's precision and recall.
/// A word without a prediction (one the model does not read, key 0) counts as a miss of its tag.
/// </summary>
public sealed class ZeroTokenClassificationMetrics
{
    private ZeroTokenClassificationMetrics(long words, double accuracy, double macroF1, IReadOnlyDictionary<string, ZeroTagMetrics> perTag)
    {
        Words = words;
        Accuracy = accuracy;
        MacroF1 = macroF1;
        PerTag = perTag;
    }

    /// <summary>The words counted: those whose label key is not missing.</summary>
    public long Words { get; }

    /// <summary>The share of words tagged right.</summary>
    public double Accuracy { get; }

    /// <summary>The mean of the tags' F1, over the tags that were labelled or predicted (as scikit-learn's macro average).</summary>
    public double MacroF1 { get; }

    /// <summary>Each tag's metrics, by the label's key value, in key order.</summary>
    public IReadOnlyDictionary<string, ZeroTagMetrics> PerTag { get; }

    internal static ZeroTokenClassificationMetrics Evaluate(IDataView data, string labelColumnName, string predictedLabelColumnName)
    {
        ArgumentNullException.ThrowIfNull(data);
        var labelOption = new ColumnOption(labelColumnName, nameof(labelColumnName));
        var predictedOption = new ColumnOption(predictedLabelColumnName, nameof(predictedLabelColumnName));
        var label = ColumnChecks.Find(data.Schema, labelOption, "label");
        var predicted = ColumnChecks.Find(data.Schema, predictedOption, "predicted label");
        int tags = WordLabelColumns.CheckLabelType(labelOption, label.Type);
        if (WordLabelColumns.CheckLabelType(predictedOption, predicted.Type) != tags)
            throw new ArgumentOutOfRangeException(nameof(predictedLabelColumnName), $"Column '{predictedLabelColumnName}' has type {predicted.Type}; " +
                $"expected keys of the label's {tags} values.");
        var names = LabelKeyValues.FromLabel(label, tags).Names;
        var sums = TokenClassificationValidation.Tally(data, labelColumnName, predictedLabelColumnName, tags).Sums;
        var overall = ClassificationTally.Metrics(sums, tags);
        var perTag = new Dictionary<string, ZeroTagMetrics>();
        for (int tag = 0; tag < tags; tag++)
        {
            var (precision, recall, f1, support) = ClassificationTally.OfClass(sums, tags, tag);
            perTag[names[tag].ToString()] = new ZeroTagMetrics(precision, recall, f1, support);
        }
        return new ZeroTokenClassificationMetrics(overall.Rows, overall[ZeroMetric.Accuracy], overall[ZeroMetric.MacroF1], perTag);
    }
}

/// <summary>One tag's metrics over the words of a token classifier's output.</summary>
public sealed class ZeroTagMetrics
{
    internal ZeroTagMetrics(double precision, double recall, double f1, long support)
    {
        Precision = precision;
        Recall = recall;
        F1 = f1;
        Support = support;
    }

    /// <summary>Of the words predicted as the tag, the share that carry it; NaN when none was predicted as it.</summary>
    public double Precision { get; }

    /// <summary>Of the words that carry the tag, the share predicted as it; NaN when none carries it.</summary>
    public double Recall { get; }

    /// <summary>The harmonic mean of precision and recall; NaN when the tag was neither labelled nor predicted.</summary>
    public double F1 { get; }

    /// <summary>The words that carry the tag.</summary>
    public long Support { get; }
}
