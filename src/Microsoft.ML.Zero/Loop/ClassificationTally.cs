using Microsoft.ML.Zero.Monitoring;

namespace Microsoft.ML.Zero.Loop;

/// <summary>
/// What a rank's share of the validation set adds to a classifier's metrics: the confusion counts and the summed
/// log-loss. Sums of these over ranks give the metrics of every row exactly, whatever the shares.
/// </summary>
internal sealed class ClassificationTally
{
    // ML.NET's multiclass evaluator clips probabilities here before the logarithm.
    private const double ProbabilityFloor = 1e-15;

    private readonly int _classes;

    // [truth * classes + predicted] counts, then per class the rows without a prediction, then the summed log-loss,
    // then the rows: the layout summed over ranks.
    private readonly double[] _sums;

    public ClassificationTally(int classes)
    {
        _classes = classes;
        _sums = new double[classes * classes + classes + 2];
    }

    /// <summary>One row: zero-based label and prediction, and the probability the model gave the label.</summary>
    public void Add(int truth, int predicted, double truthProbability)
    {
        _sums[truth * _classes + predicted]++;
        _sums[^2] -= Math.Log(Math.Max(truthProbability, ProbabilityFloor));
        _sums[^1]++;
    }

    /// <summary>
    /// One row the model made no prediction for (a word past a token classifier's maximum length): wrong for accuracy,
    /// a miss of class <paramref name="truth"/> for its recall; it adds nothing to the log-loss.
    /// </summary>
    public void AddUnpredicted(int truth)
    {
        _sums[_classes * _classes + truth]++;
        _sums[^1]++;
    }

    /// <summary>The values to sum over ranks.</summary>
    public double[] Sums => _sums;

    /// <summary>
    /// Class <paramref name="c"/>'s precision, recall and F1 from <see cref="Sums"/> (NaN where nothing was predicted or
    /// labelled as it, as scikit-learn warns), and its labelled rows.
    /// </summary>
    public static (double Precision, double Recall, double F1, long Support) OfClass(double[] sums, int classes, int c)
    {
        double truePositives = sums[c * classes + c], labelled = sums[classes * classes + c], predicted = 0;
        for (int other = 0; other < classes; other++)
        {
            labelled += sums[c * classes + other];
            predicted += sums[other * classes + c];
        }
        return (predicted == 0 ? double.NaN : truePositives / predicted, labelled == 0 ? double.NaN : truePositives / labelled,
            labelled + predicted == 0 ? double.NaN : 2 * truePositives / (labelled + predicted), (long)labelled);
    }

    /// <summary>Accuracy, macro F1 and log-loss from <see cref="Sums"/> added up over every rank.</summary>
    public static ValidationMetrics Metrics(double[] sums, int classes)
    {
        long rows = (long)sums[^1];
        double correct = 0, f1Total = 0;
        int f1Classes = 0;
        for (int c = 0; c < classes; c++)
        {
            correct += sums[c * classes + c];
            // A class that is neither a label nor a prediction has no F1; scikit-learn's macro average leaves it out.
            double f1 = OfClass(sums, classes, c).F1;
            if (!double.IsNaN(f1))
            {
                f1Total += f1;
                f1Classes++;
            }
        }
        var values = new Dictionary<ZeroMetric, double>
        {
            [ZeroMetric.Accuracy] = rows == 0 ? double.NaN : correct / rows,
            [ZeroMetric.MacroF1] = f1Classes == 0 ? double.NaN : f1Total / f1Classes,
            [ZeroMetric.LogLoss] = rows == 0 ? double.NaN : sums[^2] / rows,
        };
        return new ValidationMetrics(rows, values);
    }
}
