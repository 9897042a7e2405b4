using System.Globalization;
using Microsoft.ML.Data;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// Entry point of the test assembly when a test starts it as a child process: loads a saved model in a fresh process
/// (no training code has run there) and writes its scores, so tests can compare them with the parent's; or runs one
/// process of a test MPI job.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args is ["mpi-train", var weightsPath, var fault, var faultRank])
            return MpiJob.Run(weightsPath, fault, int.Parse(faultRank));
        if (args is not ["score", var modelPath, var dataPath, var outputPath])
        {
            Console.Error.WriteLine("usage: Microsoft.ML.Zero.Tests score <model.zip> <iris.json> <scores.tsv>\n" +
                "       mpirun -np 2 Microsoft.ML.Zero.Tests mpi-train <weights.bin> none|overlap|bf16-wire|fail-rank|kill-rank|stall-rank|... <rank>");
            return 2;
        }
        var mlContext = new MLContext();
        var model = mlContext.Model.Load(modelPath, out _);
        var data = mlContext.Data.LoadFromEnumerable(Datasets.ReadIris(dataPath));
        File.WriteAllLines(outputPath, ScoreLines(model.Transform(data)));
        return 0;
    }

    /// <summary>Each row's probabilities (exact bits) and predicted label, tab-separated.</summary>
    public static IEnumerable<string> ScoreLines(IDataView scored)
    {
        var scores = scored.GetColumn<VBuffer<float>>("Score");
        var predicted = scored.GetColumn<string>("PredictedLabel");
        return scores.Zip(predicted, (score, label) =>
            string.Join("\t", score.DenseValues().Select(v => BitConverter.SingleToInt32Bits(v).ToString("X8", CultureInfo.InvariantCulture))) + "\t" + label);
    }
}
