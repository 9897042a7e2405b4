using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests.TestSupport;

/// <summary>
/// Fisher's iris as the tests use it: the 150 rows, the data views the MLP trainer takes, the pipeline around it, and the
/// trained weights as one flat array.
/// </summary>
internal static class IrisFixtures
{
    /// <summary>The iris file the test assembly's "score" child mode reads (Program.cs).</summary>
    public static string DataPath => Path.Combine(Datasets.Directory, "iris.json");

    /// <summary>The 150 rows, as loaded: string labels, raw measurements.</summary>
    public static IDataView Load(MLContext mlContext) => mlContext.Data.LoadFromEnumerable(Datasets.Iris());

    /// <summary>80% to train and 20% to test, the split the accuracy tests use.</summary>
    public static DataOperationsCatalog.TrainTestData Split(MLContext mlContext) => mlContext.Data.TrainTestSplit(Load(mlContext), testFraction: 0.2, seed: 0);

    /// <summary>The 150 rows as the trainer takes them: key-typed labels and min-max normalized features.</summary>
    public static IDataView Prepared(MLContext mlContext) => Prepare(mlContext, Load(mlContext));

    /// <summary><paramref name="data"/> with key-typed labels and min-max normalized features.</summary>
    public static IDataView Prepare(MLContext mlContext, IDataView data) =>
        mlContext.Transforms.Conversion.MapValueToKey("Label")
            .Append(mlContext.Transforms.NormalizeMinMax("Features"))
            .Fit(data).Transform(data);

    /// <summary>Raw rows in, species names out: MapValueToKey, NormalizeMinMax, the MLP trainer, MapKeyToValue.</summary>
    public static IEstimator<ITransformer> Pipeline(MLContext mlContext, ZeroTrainerOptions options) =>
        mlContext.Transforms.Conversion.MapValueToKey("Label")
            .Append(mlContext.Transforms.NormalizeMinMax("Features"))
            .Append(mlContext.Zero().Trainer(options))
            .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

    /// <summary>Every parameter of <paramref name="model"/>, in order, flattened into one fp32 array (16-bit ones widened).</summary>
    public static float[] Weights(nn.Module model)
    {
        using var scope = NewDisposeScope();
        return cat(model.parameters().Select(p => p.detach().to(ScalarType.Float32).flatten()).ToList()).data<float>().ToArray();
    }
}

/// <summary>An iris row without its label: the shape FilterByCustomPredicate reads.</summary>
public sealed class IrisFeatures
{
    [VectorType(4)]
    public float[] Features { get; set; } = Array.Empty<float>();
}

/// <summary>What the iris pipeline adds to a row: class probabilities and the species name.</summary>
public sealed class IrisPrediction
{
    public float[] Score { get; set; } = Array.Empty<float>();

    public string PredictedLabel { get; set; } = "";
}
