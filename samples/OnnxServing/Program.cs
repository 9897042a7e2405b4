// Serves a BERT classifier exported by Microsoft.ML.Zero (mlContext.Zero().ExportToOnnx) with ONNX Runtime and
// Microsoft.ML.Tokenizers alone: no TorchSharp, no ML.NET. BertSentiment exports into bert-sentiment/onnx.
//   dotnet run --project samples/OnnxServing -c Release -- bert-sentiment/onnx "Great food!" "Never again."
// With no texts after the folder it reads one text a line from standard input.
using Microsoft.ML.Zero.Samples.OnnxServing;

string folder = args.FirstOrDefault() ?? "bert-sentiment/onnx";
if (!File.Exists(Path.Combine(folder, "model.json")))
{
    Console.Error.WriteLine($"'{folder}' holds no exported model (model.json); run samples/BertSentiment first, or name the export folder.");
    return 1;
}
using var classifier = new OnnxTextClassifier(folder);
var texts = args.Length > 1 ? args.Skip(1) : ReadLines(Console.In);
foreach (string text in texts)
{
    var (label, probability) = classifier.Predict(text);
    Console.WriteLine($"{label}\t{probability:F3}\t{text}");
}
return 0;

static IEnumerable<string> ReadLines(TextReader reader)
{
    while (reader.ReadLine() is { } line)
        if (line.Length > 0)
            yield return line;
}
