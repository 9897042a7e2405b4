// Loads a model that another app trained and saved, and writes its scores of the iris rows. This app uses no
// Microsoft.ML.Zero type: the package reference alone lets ML.NET find the model's loader.
// usage: Score <iris.json> <model.zip> <scores.tsv>
using Microsoft.ML;

var mlContext = new MLContext();
var model = mlContext.Model.Load(args[1], out _);
var data = mlContext.Data.LoadFromEnumerable(IrisRow.Read(args[0]));
File.WriteAllLines(args[2], IrisRow.ScoreLines(model.Transform(data)));
