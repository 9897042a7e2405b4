using System.Globalization;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;

/// <summary>An iris flower, read from the data file both apps get, and the scores both apps write.</summary>
public sealed class IrisRow
{
    [VectorType(4)]
    public float[] Features { get; set; } = Array.Empty<float>();

    public string Label { get; set; } = "";

    /// <summary>iris.json: a JSON array of [sepal length, sepal width, petal length, petal width, "species"].</summary>
    public static IrisRow[] Read(string path) =>
        JsonSerializer.Deserialize<JsonElement[][]>(File.ReadAllText(path))!
            .Select(r => new IrisRow { Features = r.Take(4).Select(v => v.GetSingle()).ToArray(), Label = r[4].GetString()! })
            .ToArray();

    /// <summary>Each row's probabilities (exact bits) and predicted label, tab-separated.</summary>
    public static IEnumerable<string> ScoreLines(IDataView scored) =>
        scored.GetColumn<VBuffer<float>>("Score").Zip(scored.GetColumn<string>("PredictedLabel"), (score, label) =>
            string.Join("\t", score.DenseValues().Select(v => BitConverter.SingleToInt32Bits(v).ToString("X8", CultureInfo.InvariantCulture))) + "\t" + label);
}
