using Microsoft.ML.Zero.Monitoring;

namespace Microsoft.ML.Zero.Loop;

/// <summary>
/// What a rank's share of the validation set adds to a regression's metrics: each row's label and score, at the row's
/// place in the whole set, zeros elsewhere. Summed over ranks that is every row once, exactly, which rank correlation
/// needs (it cannot be summed from per-rank totals).
/// </summary>
internal sealed class RegressionTally
{
    // [scored, label, score] per row of the whole validation set.
    private const int PerRow = 3;

    private readonly double[] _sums;

    public RegressionTally(long rows) => _sums = new double[checked(rows * PerRow)];

    /// <summary>Row <paramref name="row"/> of the whole set, scored <paramref name="score"/> against <paramref name="label"/>.</summary>
    public void Add(long row, double label, double score)
    {
        _sums[row * PerRow] = 1;
        _sums[row * PerRow + 1] = label;
        _sums[row * PerRow + 2] = score;
    }

    /// <summary>The values to sum over ranks.</summary>
    public double[] Sums => _sums;

    /// <summary>MSE, Pearson and Spearman from <see cref="Sums"/> added up over every rank.</summary>
    public static ValidationMetrics Metrics(double[] sums)
    {
        var labels = new List<double>();
        var scores = new List<double>();
        for (int i = 0; i < sums.Length; i += PerRow)
            if (sums[i] > 0)
            {
                labels.Add(sums[i + 1]);
                scores.Add(sums[i + 2]);
            }
        var values = new Dictionary<ZeroMetric, double>
        {
            [ZeroMetric.MeanSquaredError] = labels.Count == 0 ? double.NaN : labels.Zip(scores, (l, s) => (s - l) * (s - l)).Average(),
            [ZeroMetric.PearsonCorrelation] = Correlation.Pearson(labels, scores),
            [ZeroMetric.SpearmanCorrelation] = Correlation.Spearman(labels, scores),
        };
        return new ValidationMetrics(labels.Count, values);
    }
}

/// <summary>Pearson's and Spearman's correlation, as SciPy's pearsonr and spearmanr compute them (NaN when either side is constant).</summary>
internal static class Correlation
{
    public static double Pearson(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        if (x.Count < 2)
            return double.NaN;
        double meanX = x.Average(), meanY = y.Average(), xy = 0, xx = 0, yy = 0;
        for (int i = 0; i < x.Count; i++)
        {
            double dx = x[i] - meanX, dy = y[i] - meanY;
            xy += dx * dy;
            xx += dx * dx;
            yy += dy * dy;
        }
        return xx == 0 || yy == 0 ? double.NaN : xy / Math.Sqrt(xx * yy);
    }

    public static double Spearman(IReadOnlyList<double> x, IReadOnlyList<double> y) => Pearson(Ranks(x), Ranks(y));

    // 1-based ranks; tied values share the mean of the ranks they span.
    public static double[] Ranks(IReadOnlyList<double> values)
    {
        var order = Enumerable.Range(0, values.Count).OrderBy(i => values[i]).ToArray();
        var ranks = new double[values.Count];
        for (int start = 0; start < order.Length;)
        {
            int end = start;
            while (end + 1 < order.Length && values[order[end + 1]] == values[order[start]])
                end++;
            double rank = (start + end) / 2.0 + 1;
            for (int k = start; k <= end; k++)
                ranks[order[k]] = rank;
            start = end + 1;
        }
        return ranks;
    }
}
