// Trains an iris classifier with two data-parallel ranks through the Microsoft.ML.Zero package, prints its accuracy
// on the training rows, saves the model and writes its scores of those rows.
// usage: Train <iris.json> <model.zip> <scores.tsv>
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Zero;

var mlContext = new MLContext(seed: 0);
var data = mlContext.Data.LoadFromEnumerable(IrisRow.Read(args[0]));
var options = new ZeroTrainerOptions { WorldSize = 2, BatchSize = 8, MaxEpoch = 30, LearningRate = 0.01 };
var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label")
    .Append(mlContext.Transforms.NormalizeMinMax("Features"))
    .Append(mlContext.Zero().Trainer(options))
    .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
var model = pipeline.Fit(data);

var scored = model.Transform(data);
var metrics = mlContext.MulticlassClassification.Evaluate(scored);
Console.WriteLine("accuracy " + metrics.MicroAccuracy.ToString("R", CultureInfo.InvariantCulture));
mlContext.Model.Save(model, data.Schema, args[1]);
File.WriteAllLines(args[2], IrisRow.ScoreLines(scored));
