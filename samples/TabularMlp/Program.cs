// Trains an MLP classifier on Fisher's iris data with two data-parallel ranks in this process (or, started by
// `mpirun -np 2`, one rank per process), evaluates it on a held-out 20%, saves a standard ML.NET model zip,
// reloads it and predicts.
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Zero;

var mlContext = new MLContext(seed: 0);

var rows = JsonSerializer.Deserialize<JsonElement[][]>(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Data", "iris.json")))!
    .Select(r => new Iris { Features = r.Take(4).Select(v => v.GetSingle()).ToArray(), Label = r[4].GetString()! });
var split = mlContext.Data.TrainTestSplit(mlContext.Data.LoadFromEnumerable(rows), testFraction: 0.2, seed: 0);

var options = new ZeroTrainerOptions
{
    WorldSize = 2,            // two replicas on two threads; gradients are averaged every step
    BatchSize = 8,            // rows per rank per step: a global batch of 16
    MaxEpoch = 60,
    LearningRate = 0.01,
    HiddenLayerSizes = new[] { 16 },
};
var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label")
    .Append(mlContext.Transforms.NormalizeMinMax("Features"))
    .Append(mlContext.Zero().Trainer(options))
    .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
var model = pipeline.Fit(split.TrainSet);

// Under mpirun every process is one rank and ends with the same model: only rank 0's process reports and saves.
if (!mlContext.Zero().IsMainProcess)
    return;

var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(split.TestSet));
Console.WriteLine($"Test accuracy {metrics.MicroAccuracy:P1}, log-loss {metrics.LogLoss:F3}");
Console.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());

string modelPath = Path.GetFullPath("iris-model.zip");
mlContext.Model.SaveAtomically(model, split.TrainSet.Schema, modelPath); // temp file + rename: never a half-written zip
var loaded = mlContext.Model.Load(modelPath, out _);
var engine = mlContext.Model.CreatePredictionEngine<Iris, IrisPrediction>(loaded);
var flower = new Iris { Features = new[] { 6.1f, 2.8f, 4.7f, 1.2f } };
var prediction = engine.Predict(flower);
Console.WriteLine($"Saved {modelPath}; reloaded, it calls [{string.Join(", ", flower.Features)}] {prediction.PredictedLabel} ({prediction.Score.Max():P0}).");

internal sealed class Iris
{
    [VectorType(4)]
    public float[] Features { get; set; } = Array.Empty<float>();

    public string Label { get; set; } = "";
}

internal sealed class IrisPrediction
{
    public float[] Score { get; set; } = Array.Empty<float>();

    public string PredictedLabel { get; set; } = "";
}
