using System.Globalization;

namespace Microsoft.ML.Zero.Monitoring;

/// <summary>
/// DeepSpeed's <c>csv_monitor</c>: one CSV file per metric in the job's folder, named after the metric with '/' as '_'
/// (<c>Train_Samples_train_loss.csv</c>), with a <c>step,&lt;metric&gt;</c> header and one row per value, the step
/// being the samples seen so far. Files are appended to, so a resumed run continues them, after dropping the rows past
/// its checkpoint (<see cref="Resume"/>); each row is flushed as written.
/// </summary>
internal sealed class CsvMonitor : IMetricWriter
{
    private readonly string _folder;
    private readonly Dictionary<string, StreamWriter> _files = new();

    public CsvMonitor(string folder)
    {
        _folder = folder;
        Directory.CreateDirectory(folder);
    }

    /// <summary>The file a metric is written to.</summary>
    public static string FileName(string metric) => metric.Replace('/', '_').Replace(' ', '_') + ".csv";

    public void Write(IEnumerable<(string Name, double Value)> values, long samples)
    {
        var written = new List<StreamWriter>();
        foreach (var (name, value) in values)
        {
            var writer = Writer(name);
            writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{samples},{value:R}"));
            written.Add(writer);
        }
        foreach (var writer in written)
            writer.Flush();
    }

    private StreamWriter Writer(string metric)
    {
        if (_files.TryGetValue(metric, out var writer))
            return writer;
        string path = Path.Combine(_folder, FileName(metric));
        bool empty = !File.Exists(path) || new FileInfo(path).Length == 0;
        writer = new StreamWriter(path, append: true);
        if (empty)
            writer.WriteLine($"step,{metric[(metric.LastIndexOf('/') + 1)..]}");
        _files.Add(metric, writer);
        return writer;
    }

    /// <summary>
    /// Drops the rows past <paramref name="samples"/> from every metric file of the folder: a stopped run wrote them
    /// after its last checkpoint, and the resumed run writes those steps again, so steps would go back. A row cut
    /// short by the crash goes too.
    /// </summary>
    public void Resume(long samples)
    {
        foreach (var writer in _files.Values)
            writer.Dispose();
        _files.Clear();
        foreach (string path in Directory.GetFiles(_folder, "*.csv"))
        {
            var lines = File.ReadAllLines(path);
            if (lines.Length == 0 || !lines[0].StartsWith("step,", StringComparison.Ordinal))
                continue; // not a metric file
            var kept = lines.Take(1).Concat(lines.Skip(1).Where(line => Step(line) is { } step && step <= samples)).ToArray();
            if (kept.Length == lines.Length)
                continue;
            string temp = path + ".tmp";
            File.WriteAllLines(temp, kept);
            File.Move(temp, path, overwrite: true);
        }
    }

    // The step of a whole "step,value" row, or null.
    private static long? Step(string line)
    {
        int comma = line.IndexOf(',');
        return comma > 0 && comma < line.Length - 1 && long.TryParse(line.AsSpan(0, comma), NumberStyles.None, CultureInfo.InvariantCulture, out long step)
            && double.TryParse(line.AsSpan(comma + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out _) ? step : null;
    }

    public void Dispose()
    {
        foreach (var writer in _files.Values)
            writer.Dispose();
        _files.Clear();
    }
}
