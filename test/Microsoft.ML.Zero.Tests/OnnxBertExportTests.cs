using Microsoft.ML.Data;
using Microsoft.ML.Zero.Samples.OnnxServing;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// The real MiniLM, fine-tuned on UCI sentiment and exported: ONNX Runtime (through the serving sample's scorer) and
/// ML.NET's ApplyOnnxModel score the test split as the ML.NET model does.
/// </summary>
[TestClass]
[TestCategory("bert")]
public sealed class OnnxBertExportTests
{
    private const int MaxLength = 64;
    private const double Tolerance = 1e-4;

    private static TempFolder? _folder;
    private static ITransformer? _model;
    private static IDataView? _test;
    private static SentimentRow[] _testRows = Array.Empty<SentimentRow>();

    [ClassInitialize]
    public static void FineTuneAndExport(TestContext context)
    {
        var mlContext = new MLContext(seed: 0);
        var split = mlContext.Data.TrainTestSplit(mlContext.Data.LoadFromEnumerable(SentimentData.All()), testFraction: 0.2, seed: 0);
        var train = mlContext.Data.TakeRows(split.TrainSet, 320);
        var options = new ZeroTextClassificationOptions
        {
            CheckpointPath = MiniLm.Directory(), Sentence1ColumnName = "Text", WorldSize = 2, BatchSize = 16, MaxEpoch = 1, MaxSequenceLength = MaxLength,
            Seed = 1, Progress = ZeroProgress.None, DeepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Fp32 },
        };
        _model = mlContext.Transforms.Conversion.MapValueToKey("Label")
            .Append(mlContext.Zero().TextClassification(options))
            .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(train);
        _test = split.TestSet;
        _testRows = mlContext.Data.CreateEnumerable<SentimentRow>(split.TestSet, reuseRowObject: false).ToArray();
        _folder = new TempFolder("zero-onnx-minilm-");
        mlContext.Zero().ExportToOnnx(_model, _folder.Path);
    }

    [ClassCleanup]
    public static void Delete() => _folder?.Dispose();

    private static float[][] Scores(IDataView scored, string column) =>
        scored.GetColumn<VBuffer<float>>(column).Select(row => row.DenseValues().ToArray()).ToArray();

    private static double MaxDifference(float[][] expected, float[][] actual)
    {
        Assert.AreEqual(expected.Length, actual.Length, "rows");
        return expected.Zip(actual, (e, a) => e.Zip(a, (x, y) => Math.Abs((double)x - y)).Max()).Max();
    }

    [TestMethod]
    public void OnnxRuntimeScoresTheTestSplitAsTheMLNetModel()
    {
        var expected = Scores(_model!.Transform(_test!), "Score");
        using var classifier = new OnnxTextClassifier(_folder!.Path);
        // In batches of 64, as a serving app would send them.
        var actual = _testRows.Chunk(64).SelectMany(rows => classifier.Probabilities(rows.Select(r => r.Text).ToArray())).ToArray();
        double difference = MaxDifference(expected, actual);
        Assert.IsTrue(difference <= Tolerance, $"max |ML.NET - ONNX Runtime| over {expected.Length} rows = {difference:E2}");
        // Twenty steps leave the model far from done, but well above chance (0.5): the scores that agree carry signal.
        double accuracy = _testRows.Zip(actual, (row, p) => classifier.Labels[Array.IndexOf(p, p.Max())] == row.Label).Count(ok => ok) / (double)_testRows.Length;
        Assert.IsTrue(accuracy > 0.6, $"accuracy {accuracy:P1}");
    }

    private sealed class Encoded
    {
        [VectorType(MaxLength)] public long[] input_ids { get; set; } = Array.Empty<long>();
        [VectorType(MaxLength)] public long[] attention_mask { get; set; } = Array.Empty<long>();
        [VectorType(MaxLength)] public long[] token_type_ids { get; set; } = Array.Empty<long>();
    }

    [TestMethod]
    public void ApplyOnnxModelScoresTheSameFileInAnMLNetPipeline()
    {
        var mlContext = new MLContext(seed: 0);
        // Token ids from Microsoft.ML.Tokenizers, padded to MaxLength: ApplyOnnxModel takes fixed-size vector columns. Rows
        // that fit, so the ids need no truncation rule here.
        var tokenizer = Microsoft.ML.Tokenizers.BertTokenizer.Create(Path.Combine(_folder!.Path, "vocab.txt"));
        var rows = _testRows.Where(row => tokenizer.EncodeToIds(row.Text).Count <= MaxLength).Take(100).ToArray();
        var expected = Scores(_model!.Transform(mlContext.Data.LoadFromEnumerable(rows)), "Score");

        var encoded = rows.Select(row =>
        {
            var ids = tokenizer.EncodeToIds(row.Text).Select(id => (long)id).ToArray();
            return new Encoded
            {
                input_ids = ids.Concat(new long[MaxLength - ids.Length]).ToArray(),
                attention_mask = ids.Select(_ => 1L).Concat(new long[MaxLength - ids.Length]).ToArray(),
                token_type_ids = new long[MaxLength],
            };
        }).ToArray();
        var data = mlContext.Data.LoadFromEnumerable(encoded);
        var shapes = new Dictionary<string, int[]> { ["input_ids"] = new[] { 1, MaxLength }, ["attention_mask"] = new[] { 1, MaxLength }, ["token_type_ids"] = new[] { 1, MaxLength } };
        var onnx = mlContext.Transforms.ApplyOnnxModel(new[] { "probabilities" }, new[] { "input_ids", "attention_mask", "token_type_ids" },
            Path.Combine(_folder!.Path, "model.onnx"), shapes, gpuDeviceId: null, fallbackToCpu: false);
        var actual = Scores(onnx.Fit(data).Transform(data), "probabilities");
        double difference = MaxDifference(expected, actual);
        Assert.IsTrue(difference <= Tolerance, $"max |ML.NET - ApplyOnnxModel| over {rows.Length} rows = {difference:E2}");
    }
}
