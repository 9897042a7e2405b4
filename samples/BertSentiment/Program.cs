// Fine-tunes a pretrained BERT (all-MiniLM-L6-v2) as a sentiment classifier on the UCI Sentiment Labelled Sentences,
// with two data-parallel ranks in this process (or, started by `mpirun -np 2`, one rank per process). The DeepSpeed
// settings come from ds_config.json: precision "auto" trains in bf16 where the CPU computes it natively (AVX512_BF16
// or AMX), in fp32 elsewhere, and the log says which and why. It evaluates on a held-out 20%, saves a standard ML.NET model zip,
// reloads it and predicts, exports it to ONNX, and plots the training curves the csv_monitor wrote.
using Microsoft.ML;
using Microsoft.ML.Zero;
using Microsoft.ML.Zero.SampleData;
using Microsoft.ML.Zero.Samples;

var mlContext = new MLContext(seed: 0);
string output = Path.GetFullPath(args.FirstOrDefault() ?? "bert-sentiment");
var deepSpeed = DeepSpeedOptions.FromDeepSpeedConfig(Path.Combine(AppContext.BaseDirectory, "ds_config.json"));
// The metrics land in output/runs/bert-sentiment; each run starts them afresh (the monitors append).
deepSpeed.CsvMonitor.OutputPath = deepSpeed.TensorBoard.OutputPath = Path.Combine(output, "runs");
if (mlContext.Zero().IsMainProcess && Directory.Exists(deepSpeed.CsvMonitor.Folder))
    Directory.Delete(deepSpeed.CsvMonitor.Folder, recursive: true);

// 3,000 labelled sentences: 80% to train (a tenth of it to watch accuracy after each epoch), 20% to test.
var split = mlContext.Data.TrainTestSplit(mlContext.Data.LoadFromEnumerable(SentimentData.All()), testFraction: 0.2, seed: 0);
var train = mlContext.Data.TrainTestSplit(split.TrainSet, testFraction: 0.1, seed: 1);
// Labels "0" and "1" become keys in sorted order, so the validation rows get the same keys as the training rows.
var toKey = mlContext.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue);

var options = new ZeroTextClassificationOptions
{
    CheckpointPath = MiniLm.Directory(),   // a local Hugging Face folder: config.json, vocab.txt, model.safetensors
    Sentence1ColumnName = "Text",
    WorldSize = 2,                         // two replicas on two threads; gradients are averaged every step
    MaxEpoch = 2,
    MaxSequenceLength = 64,
    ValidationSet = toKey.Fit(train.TestSet).Transform(train.TestSet),
    DeepSpeed = deepSpeed,                 // precision auto, AdamW, warm-up then linear decay, overlapped all-reduce, monitors
};
var pipeline = toKey
    .Append(mlContext.Zero().TextClassification(options))
    .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
var model = pipeline.Fit(train.TrainSet);

// Under mpirun every process is one rank and ends with the same model: only rank 0's process reports and saves.
if (!mlContext.Zero().IsMainProcess)
    return;

var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(split.TestSet));
Console.WriteLine($"Test accuracy {metrics.MicroAccuracy:P1}, log-loss {metrics.LogLoss:F3}");
var matrix = metrics.ConfusionMatrix;
for (int label = 0; label < matrix.NumberOfClasses; label++)
    Console.WriteLine($"  class {(label == 0 ? "0 (negative)" : "1 (positive)")}: precision {matrix.PerClassPrecision[label]:P1}, recall {matrix.PerClassRecall[label]:P1}");
Console.WriteLine(matrix.GetFormattedConfusionTable());

string modelPath = Path.Combine(output, "model.zip");
mlContext.Model.SaveAtomically(model, train.TrainSet.Schema, modelPath); // temp file + rename: never a half-written zip
var loaded = mlContext.Model.Load(modelPath, out _);
var engine = mlContext.Model.CreatePredictionEngine<Review, ReviewPrediction>(loaded);
Console.WriteLine($"Saved {modelPath}; reloaded, it predicts:");
foreach (string text in new[] { "The battery died after two days.", "Best pizza in town, friendly staff too!", "I would not recommend this movie to anyone." })
{
    var prediction = engine.Predict(new Review { Text = text });
    Console.WriteLine($"  {(prediction.PredictedLabel == "1" ? "positive" : "negative")} ({prediction.Score.Max():P0})  \"{text}\"");
}

// For serving without TorchSharp: ONNX (model.onnx, model.json, vocab.txt) that samples/OnnxServing scores with
// ONNX Runtime and Microsoft.ML.Tokenizers alone.
string onnx = Path.Combine(output, "onnx");
mlContext.Zero().ExportToOnnx(model, onnx);
Console.WriteLine($"Exported to ONNX: {onnx} (dotnet run --project samples/OnnxServing -c Release -- {Path.GetRelativePath(Environment.CurrentDirectory, onnx)} \"Great food!\")");

string plot = TrainingPlot.Save(deepSpeed.CsvMonitor.Folder, Path.Combine(output, "training.png"), mlContext.Zero().ResolvePrecision(deepSpeed.Precision));
Console.WriteLine($"Training curves: {plot}; TensorBoard: tensorboard --logdir {deepSpeed.TensorBoard.Folder}");

internal sealed class Review
{
    public string Text { get; set; } = "";

    // The pipeline's first step maps the label; a prediction needs the column, not a value.
    public string Label { get; set; } = "";
}

internal sealed class ReviewPrediction
{
    public float[] Score { get; set; } = Array.Empty<float>();

    public string PredictedLabel { get; set; } = "";
}
