using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.ML.Zero.Samples.OnnxServing;
using Onnx;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// ONNX export of the MLP and of a tiny BERT: ONNX Runtime and ML.NET's ApplyOnnxModel score the exported graph as the
/// ML.NET model does, the manifest says how to tokenize, and models that cannot be exported say so.
/// </summary>
[TestClass]
public sealed class OnnxExportTests
{
    private const double Tolerance = 1e-4;

    private static TempFolder? _models;

    [ClassInitialize]
    public static void CreateFolder(TestContext context) => _models = new TempFolder("zero-onnx-export-");

    [ClassCleanup]
    public static void DeleteFolder() => _models?.Dispose();

    private static float[][] Scores(IDataView scored, string column = "Score") =>
        scored.GetColumn<VBuffer<float>>(column).Select(row => row.DenseValues().ToArray()).ToArray();

    private static void AssertClose(float[][] expected, float[][] actual, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, $"{what}: rows");
        double worst = expected.Zip(actual, (e, a) => e.Zip(a, (x, y) => Math.Abs((double)x - y)).Max()).Max();
        Assert.IsTrue(worst <= Tolerance, $"{what}: max |ML.NET - ONNX| = {worst:E2}");
    }

    private static ITransformer TrainIris(MLContext mlContext, IDataView train, MlpActivation activation, float dropout) =>
        IrisFixtures.Pipeline(mlContext, new ZeroTrainerOptions
        {
            WorldSize = 2, BatchSize = 16, MaxEpoch = 5, HiddenLayerSizes = new[] { 16, 8 }, Activation = activation, Dropout = dropout, Seed = 3,
            LearningRate = 0.01, Progress = ZeroProgress.None,
        }).Fit(train);

    [TestMethod]
    [DataRow(MlpActivation.Relu, 0f)]
    [DataRow(MlpActivation.Gelu, 0.2f)]
    [DataRow(MlpActivation.Tanh, 0.1f)]
    public void ExportedMlpScoresTheTestSplitAsTheModelDoesInOnnxRuntime(MlpActivation activation, float dropout)
    {
        var mlContext = new MLContext(seed: 0);
        var split = IrisFixtures.Split(mlContext);
        var model = TrainIris(mlContext, split.TrainSet, activation, dropout);
        string folder = _models!.Combine($"mlp-{activation}");
        mlContext.Zero().ExportToOnnx(model, folder);

        // The graph's input is the trainer's input: the normalized features, before the Zero model in the pipeline.
        var scored = model.Transform(split.TestSet);
        var features = scored.GetColumn<VBuffer<float>>("Features").Select(row => row.DenseValues().ToArray()).ToArray();
        using var session = new InferenceSession(Path.Combine(folder, "model.onnx"));
        var input = new DenseTensor<float>(features.SelectMany(row => row).ToArray(), new[] { features.Length, 4 });
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("features", input) });
        var probabilities = results.Single(r => r.Name == "probabilities").AsTensor<float>();
        var onnx = Enumerable.Range(0, features.Length).Select(row => Enumerable.Range(0, 3).Select(c => probabilities[row, c]).ToArray()).ToArray();
        AssertClose(Scores(scored), onnx, $"{activation} MLP");

        var manifest = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "model.json"))).RootElement;
        Assert.AreEqual("tabular_classification", manifest.GetProperty("task").GetString());
        var slotNames = default(VBuffer<ReadOnlyMemory<char>>);
        scored.Schema["Score"].GetSlotNames(ref slotNames);
        CollectionAssert.AreEqual(slotNames.DenseValues().Select(n => n.ToString()).ToArray(),
            manifest.GetProperty("labels").EnumerateArray().Select(l => l.GetString()).ToArray(), "the manifest's labels are Score's slots, in order");
        Assert.AreEqual(4, manifest.GetProperty("feature_count").GetInt32());
        Assert.IsFalse(File.Exists(Path.Combine(folder, "vocab.txt")), "an MLP has no vocabulary");
    }

    [TestMethod]
    public void ExportedMlpRunsInApplyOnnxModelInsideAnMLNetPipeline()
    {
        var mlContext = new MLContext(seed: 0);
        var split = IrisFixtures.Split(mlContext);
        var model = TrainIris(mlContext, split.TrainSet, MlpActivation.Relu, 0);
        using var graph = new MemoryStream();
        mlContext.Zero().ExportToOnnx(model, graph);
        string path = _models!.Combine("mlp-stream.onnx");
        File.WriteAllBytes(path, graph.ToArray());

        var scored = model.Transform(split.TestSet);
        var onnxPipeline = mlContext.Transforms.CopyColumns("features", "Features")
            .Append(mlContext.Transforms.ApplyOnnxModel(new[] { "probabilities" }, new[] { "features" }, path));
        var throughOnnx = onnxPipeline.Fit(scored).Transform(scored);
        AssertClose(Scores(scored), Scores(throughOnnx, "probabilities"), "ApplyOnnxModel");
    }

    [TestMethod]
    public void TheGraphHasOpset17DynamicBatchesAndWeightsUnderTheirStateDictNames()
    {
        var mlContext = new MLContext(seed: 0);
        var model = TrainIris(mlContext, IrisFixtures.Load(mlContext), MlpActivation.Relu, 0.1f);
        using var stream = new MemoryStream();
        mlContext.Zero().ExportToOnnx(model, stream);
        var graph = ModelProto.Parser.ParseFrom(stream.ToArray());

        Assert.AreEqual(17, graph.OpsetImport.Single(o => o.Domain == "").Version);
        var input = graph.Graph.Input.Single();
        Assert.AreEqual("features", input.Name);
        Assert.AreEqual("batch", input.Type.TensorType.Shape.Dim[0].DimParam);
        Assert.AreEqual(4, input.Type.TensorType.Shape.Dim[1].DimValue);
        CollectionAssert.AreEqual(new[] { "logits", "probabilities" }, graph.Graph.Output.Select(o => o.Name).ToArray());
        // Linear, ReLU, dropout per hidden layer: the Linear layers are children 0, 3 and 6 of the Sequential.
        CollectionAssert.AreEquivalent(new[] { "layers.0.weight", "layers.0.bias", "layers.3.weight", "layers.3.bias", "layers.6.weight", "layers.6.bias" },
            graph.Graph.Initializer.Where(t => t.Name.StartsWith("layers.")).Select(t => t.Name).ToArray());
        Assert.IsFalse(graph.Graph.Node.Any(n => n.OpType == "Dropout"), "dropout is not part of scoring");
    }

    private sealed class ReviewPair
    {
        public string Label { get; set; } = "";
        public string Text { get; set; } = "";
        public string Second { get; set; } = "";
    }

    [TestMethod]
    [DataRow(ZeroLongTextHandling.Truncate, "gelu", false)]
    [DataRow(ZeroLongTextHandling.HeadAndTail, "relu", false)]
    [DataRow(ZeroLongTextHandling.SlidingWindows, "gelu_new", false)]
    [DataRow(ZeroLongTextHandling.Truncate, "gelu", true)]
    [DataRow(ZeroLongTextHandling.SlidingWindows, "gelu", true)]
    public void ExportedBertScoresAsTheModelWithTheServingSampleTokenizer(ZeroLongTextHandling handling, string hiddenAct, bool pairs)
    {
        var mlContext = new MLContext(seed: 0);
        string checkpoint = TinyBertFolder.Write(_models!.Combine($"tiny-{handling}-{hiddenAct}-{pairs}"), hiddenDropout: 0.1, hiddenAct: hiddenAct);
        // Real sentences; each row's second text is the next row's, and every fifth is long: several windows at 16 tokens.
        var sentences = SentimentData.All().Take(200).ToArray();
        var rows = sentences.Select((row, i) => new ReviewPair
        {
            Label = row.Label,
            Text = i % 5 == 0 ? string.Join(" ", Enumerable.Repeat(row.Text, 4)) : row.Text,
            Second = sentences[(i + 1) % sentences.Length].Text,
        }).ToArray();
        var data = mlContext.Data.LoadFromEnumerable(rows);
        var options = new ZeroTextClassificationOptions
        {
            CheckpointPath = checkpoint, Sentence1ColumnName = "Text", Sentence2ColumnName = pairs ? "Second" : null, WorldSize = 2, BatchSize = 16, MaxEpoch = 1,
            MaxSequenceLength = pairs ? 48 : 16, LongTextHandling = handling, WindowStride = handling == ZeroLongTextHandling.SlidingWindows ? 4 : 0,
            LearningRate = 1e-3, Seed = 7, Progress = ZeroProgress.None, DeepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Fp32 },
        };
        var model = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(mlContext.Zero().TextClassification(options)).Fit(data);
        string folder = _models.Combine($"bert-{handling}-{hiddenAct}-{pairs}");
        mlContext.Zero().ExportToOnnx(model, folder);

        using var classifier = new OnnxTextClassifier(folder);
        var onnx = classifier.Probabilities(rows.Select(r => r.Text).ToArray(), pairs ? rows.Select(r => r.Second).ToArray() : null);
        AssertClose(Scores(model.Transform(data)), onnx, $"tiny BERT, {handling}, {hiddenAct}{(pairs ? ", pairs" : "")}");
        CollectionAssert.AreEqual(new[] { "0", "1" }, classifier.Labels.ToArray());
        var manifest = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "model.json"))).RootElement;
        Assert.AreEqual(options.MaxSequenceLength, manifest.GetProperty("max_sequence_length").GetInt32());
        Assert.AreEqual(pairs ? "Second" : null, manifest.GetProperty("sentence2_column").GetString());
        var longText = manifest.GetProperty("long_text");
        Assert.AreEqual(options.WindowStride, longText.GetProperty("window_stride").GetInt32());
        CollectionAssert.AreEqual(File.ReadAllBytes(Path.Combine(checkpoint, "vocab.txt")), File.ReadAllBytes(Path.Combine(folder, "vocab.txt")));
    }

    [TestMethod]
    public void TheBertGraphTakesHuggingFaceInputsAndNamesItsWeightsAsHuggingFaceDoes()
    {
        var mlContext = new MLContext(seed: 0);
        string checkpoint = TinyBertFolder.Write(_models!.Combine("tiny-names"), hiddenDropout: 0);
        var data = mlContext.Data.LoadFromEnumerable(SentimentData.All().Take(32));
        var model = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(mlContext.Zero().TextClassification(new ZeroTextClassificationOptions
        {
            CheckpointPath = checkpoint, Sentence1ColumnName = "Text", WorldSize = 1, BatchSize = 16, MaxEpoch = 1, MaxSequenceLength = 16, Progress = ZeroProgress.None,
        })).Fit(data);
        using var stream = new MemoryStream();
        mlContext.Zero().ExportToOnnx(model, stream);
        var graph = ModelProto.Parser.ParseFrom(stream.ToArray()).Graph;

        CollectionAssert.AreEqual(new[] { "input_ids", "attention_mask", "token_type_ids" }, graph.Input.Select(i => i.Name).ToArray());
        foreach (var input in graph.Input)
        {
            Assert.AreEqual((int)TensorProto.Types.DataType.Int64, input.Type.TensorType.ElemType, input.Name);
            CollectionAssert.AreEqual(new[] { "batch", "sequence" }, input.Type.TensorType.Shape.Dim.Select(d => d.DimParam).ToArray(), input.Name);
        }
        var names = graph.Initializer.Select(t => t.Name).ToHashSet();
        foreach (string name in new[] { "bert.embeddings.word_embeddings.weight", "bert.encoder.layer.1.attention.self.query.weight", "bert.encoder.layer.0.output.LayerNorm.bias",
                     "bert.pooler.dense.weight", "classifier.weight", "classifier.bias" })
            Assert.IsTrue(names.Contains(name), $"no initializer '{name}'");
        // Hugging Face's layout: a Linear weight is [out, in].
        CollectionAssert.AreEqual(new long[] { 2, 8 }, graph.Initializer.Single(t => t.Name == "classifier.weight").Dims.ToArray());
    }

    private sealed class LinearFactory : ZeroModelFactory
    {
        public override TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor> CreateModel(int featureCount, int classCount) =>
            TorchSharp.torch.nn.Linear(featureCount, classCount);
    }

    [TestMethod]
    public void ModelsThatCannotBeExportedSaySoAndWriteNothing()
    {
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Prepared(mlContext);
        var custom = mlContext.Zero().Trainer(new ZeroTrainerOptions { WorldSize = 1, MaxEpoch = 1, ModelFactory = new LinearFactory(), Progress = ZeroProgress.None }).Fit(data);
        string folder = _models!.Combine("custom");
        var error = Assert.ThrowsExactly<NotSupportedException>(() => mlContext.Zero().ExportToOnnx(custom, folder));
        StringAssert.Contains(error.Message, nameof(LinearFactory));
        Assert.IsFalse(Directory.Exists(folder), "a refused export created its folder");

        var notOurs = mlContext.Transforms.NormalizeMinMax("Features").Fit(data);
        var wrongModel = Assert.ThrowsExactly<ArgumentException>(() => mlContext.Zero().ExportToOnnx(notOurs, new MemoryStream()));
        StringAssert.Contains(wrongModel.Message, "no Microsoft.ML.Zero classifier");
    }
}
