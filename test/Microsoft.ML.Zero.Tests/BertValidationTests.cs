using System.Globalization;
using System.Text.RegularExpressions;

namespace Microsoft.ML.Zero.Tests;

/// <summary>The text trainer's validation set, scored in shares by the ranks between epochs.</summary>
[TestClass]
public sealed class BertValidationTests
{
    [TestMethod]
    [TestCategory("bert")]
    [DataRow(2)]
    [DataRow(3)]
    public void TheLoggedValidationAccuracyIsTheFinalModelsAccuracyOverEveryValidationRow(int worldSize)
    {
        var mlContext = new MLContext(seed: 0);
        var lines = TrainerLog.Capture(mlContext);
        var rows = SentimentData.All().ToArray();
        var train = mlContext.Data.LoadFromEnumerable(rows.Take(48));
        // 13 rows: the ranks' shares differ in size, and rank 0's starts at row 0.
        var rawValidation = mlContext.Data.LoadFromEnumerable(rows.Skip(48).Take(13));
        var validation = mlContext.Transforms.Conversion.MapValueToKey("Label").Fit(train).Transform(rawValidation);
        var options = new ZeroTextClassificationOptions
        {
            CheckpointPath = MiniLm.Directory(), Sentence1ColumnName = "Text", WorldSize = worldSize, BatchSize = 8, MaxEpoch = 1,
            MaxSequenceLength = 32, ValidationSet = validation, DeepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Fp32 },
        };
        var pipeline = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(mlContext.Zero().TextClassification(options));
        var model = pipeline.Fit(train);

        var logged = lines.Select(line => Regex.Match(line, @"Validation accuracy (\d\.\d+)")).Single(match => match.Success);
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(rawValidation));
        (model as IDisposable)?.Dispose();
        Assert.AreEqual(metrics.MicroAccuracy, double.Parse(logged.Groups[1].Value, CultureInfo.InvariantCulture), 1e-4,
            "the accuracy logged after the last epoch is not the trained model's over the 13 rows");
    }
}
