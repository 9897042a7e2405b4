using System.Diagnostics;

namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>Repeated timings of one operation, reported as a median with its spread (the interquartile range).</summary>
internal sealed record Samples(double[] Seconds)
{
    public double Median => Quantile(0.5);

    public double Q1 => Quantile(0.25);

    public double Q3 => Quantile(0.75);

    /// <summary>
    /// Times <paramref name="action"/> <paramref name="repeats"/> times after <paramref name="warmup"/> untimed runs;
    /// <paramref name="before"/>, when given, runs untimed before each.
    /// </summary>
    public static Samples Measure(Action action, int repeats, int warmup = 2, Action? before = null)
    {
        for (int i = 0; i < warmup; i++)
        {
            before?.Invoke();
            action();
        }
        var seconds = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            before?.Invoke();
            long start = Stopwatch.GetTimestamp();
            action();
            seconds[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        return new Samples(seconds);
    }

    /// <summary>"12.3 ms (11.9–12.8)": the median and the interquartile range.</summary>
    public string Milliseconds() => $"{Median * 1e3:F2} ms ({Q1 * 1e3:F2}–{Q3 * 1e3:F2})";

    /// <summary>The <paramref name="q"/> quantile of the timings, interpolated between the two nearest.</summary>
    public double Quantile(double q)
    {
        var sorted = Seconds.Order().ToArray();
        double position = q * (sorted.Length - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
    }
}
