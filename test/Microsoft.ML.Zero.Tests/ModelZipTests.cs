using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using System.Text;
using Microsoft.ML.Data;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Models;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// A crafted model zip fails to load fast with InvalidDataException naming the field, before any model is built
/// from its sizes: each test saves a real small model, patches one field of its entry, and loads it.
/// </summary>
[TestClass]
public sealed class ModelZipTests
{
    // Distinctive values, so the fields can be found in the saved entry by their bytes.
    private const int HiddenSize = 37, ScoringBatchSize = 4099, MaxSequenceLength = 77;

    private static TempFolder? _folder;
    private static string _mlpZip = "", _bertZip = "";

    [ClassInitialize]
    public static void SaveModels(TestContext context)
    {
        TorchRuntime.EnsureLoaded();
        _folder = new TempFolder("zero-zip-");
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Load(mlContext);
        // MapValueToKey, NormalizeMinMax, the trainer (Transform_002), MapKeyToValue.
        var model = IrisFixtures.Pipeline(mlContext, new ZeroTrainerOptions { MaxEpoch = 1, HiddenLayerSizes = new[] { HiddenSize }, ScoringBatchSize = ScoringBatchSize }).Fit(data);
        _mlpZip = _folder.Combine("iris.zip");
        mlContext.Model.Save(model, data.Schema, _mlpZip);
        _bertZip = SaveTinyBert(mlContext, _folder.Combine("bert.zip"));
        // The first load pays for ML.NET's component catalog; the timed loads below do not.
        mlContext.Model.Load(_mlpZip, out _);
    }

    [ClassCleanup]
    public static void DeleteModels() => _folder?.Dispose();

    private static readonly string[] TinyVocabulary = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "movie" };

    private const string TinyConfig = """
        {"model_type":"bert","vocab_size":8,"hidden_size":8,"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":16,
         "hidden_act":"gelu","hidden_dropout_prob":0.1,"attention_probs_dropout_prob":0.1,"max_position_embeddings":96,"type_vocab_size":2,
         "layer_norm_eps":1e-12,"pad_token_id":0}
        """;

    // A randomly initialized two-layer BERT classifier, saved as the text trainer saves one: no checkpoint folder needed.
    private static string SaveTinyBert(MLContext mlContext, string path)
    {
        var rows = mlContext.Data.LoadFromEnumerable(new[] { new SentimentRow { Text = "good movie", Label = "1" }, new SentimentRow { Text = "bad movie", Label = "0" } });
        var keyed = mlContext.Transforms.Conversion.MapValueToKey("Label").Fit(rows).Transform(rows);
        var config = BertConfig.Parse(TinyConfig, "tiny config");
        var encoder = new BertTextEncoder(Encoding.UTF8.GetBytes(string.Join("\n", TinyVocabulary) + "\n"), lowerCase: true, MaxSequenceLength);
        var scorer = new BertScorer(new BertClassifier(config, 2, new Generator(0)), encoder, "Text", null);
        using var transformer = new ZeroTransformer(scorer, new ScoreColumns("Score", "PredictedLabel", LabelKeyValues.FromLabel(keyed.Schema["Label"], 2)), 8);
        mlContext.Model.Save(transformer, keyed.Schema, path);
        return path;
    }

    // A copy of zip whose entry (a file in the trainer's folder, the one that holds TorchWeights.bin) went through patch.
    private static string Patched(string zip, string entry, Func<byte[], byte[]> patch)
    {
        string copy = _folder!.Combine($"{Guid.NewGuid():N}.zip");
        File.Copy(zip, copy);
        using var archive = ZipFile.Open(copy, ZipArchiveMode.Update);
        string folder = archive.Entries.Single(e => e.Name == "TorchWeights.bin").FullName[..^"TorchWeights.bin".Length];
        var original = archive.GetEntry(folder + entry) ?? throw new InvalidOperationException($"{zip} has no {folder + entry}");
        var bytes = new MemoryStream();
        using (var stream = original.Open())
            stream.CopyTo(bytes);
        original.Delete();
        using (var stream = archive.CreateEntry(folder + entry).Open())
            stream.Write(patch(bytes.ToArray()));
        return copy;
    }

    // Replaces the int32 at pattern[index] where the little-endian int32 run pattern occurs once in bytes.
    private static byte[] PatchInt(byte[] bytes, int[] pattern, int index, int value)
    {
        byte[] run = pattern.SelectMany(BitConverter.GetBytes).ToArray();
        int at = bytes.AsSpan().IndexOf(run);
        Assert.IsTrue(at >= 0 && bytes.AsSpan(at + 1).IndexOf(run) < 0, $"[{string.Join(", ", pattern)}] must occur once");
        BitConverter.GetBytes(value).CopyTo(bytes, at + 4 * index);
        return bytes;
    }

    // The MLP's shape as MlpShape.Save writes it: input size, hidden-layer count, the sizes, class count, activation.
    private static readonly int[] MlpShape = { 4, 1, HiddenSize, 3, 0 };

    private static string MlpWith(int index, int value) => Patched(_mlpZip, "Model.key", bytes => PatchInt(bytes, MlpShape, index, value));

    // ML.NET calls a loader through reflection, so what the loader throws arrives wrapped in TargetInvocationException
    // (once per level: the chain, then the transformer); the loader's own exception is the innermost one.
    private static InvalidDataException LoadFails(string zip)
    {
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<Exception>(() => new MLContext().Model.Load(zip, out _));
        clock.Stop();
        while (error is TargetInvocationException { InnerException: { } inner })
            error = inner;
        Assert.IsInstanceOfType<InvalidDataException>(error, error.ToString());
        Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(2), $"the load took {clock.Elapsed}");
        return (InvalidDataException)error;
    }

    private static void AssertNames(Exception error, params string[] parts)
    {
        foreach (string part in parts)
            StringAssert.Contains(error.Message, part);
    }

    [TestMethod]
    public void TheSavedModelsLoadAndScore()
    {
        var mlContext = new MLContext(seed: 0);
        var model = mlContext.Model.Load(_mlpZip, out _);
        Assert.AreEqual(150, mlContext.Data.CreateEnumerable<IrisPrediction>(model.Transform(IrisFixtures.Load(mlContext)), reuseRowObject: false).Count());
        var bert = mlContext.Model.Load(_bertZip, out _);
        var scored = bert.Transform(mlContext.Data.LoadFromEnumerable(new[] { new SentimentRow { Text = "good movie" } }));
        Assert.AreEqual(2, mlContext.Data.CreateEnumerable<Scores>(scored, reuseRowObject: false).Single().Score.Length);
    }

    private sealed class Scores
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    [TestMethod]
    public void AHugeHiddenLayerIsRefusedBeforeItIsBuilt()
    {
        // 2^30 units from 4 inputs would ask libtorch for 16 GB before the 3 KB file's weights were read.
        var error = LoadFails(MlpWith(2, 1 << 30));
        AssertNames(error, "HiddenLayerSizes[0] is 1073741824", "1 to 1048576", "TransformerChain/Transform_002/Model.key");
    }

    [TestMethod]
    public void AHiddenSizeTheWeightsDoNotHoldIsRefusedBeforeItIsBuilt()
    {
        var error = LoadFails(MlpWith(2, 1 << 20));
        AssertNames(error, "TorchWeights.bin", "holds 484 weights", "imply 13631491");
        AssertNames(LoadFails(MlpWith(2, HiddenSize + 1)), "TorchWeights.bin", "holds 484 weights");
    }

    [TestMethod]
    [DataRow(int.MaxValue)]
    [DataRow(-1)]
    public void AHiddenLayerCountOutOfRangeIsNamed(int count) =>
        AssertNames(LoadFails(MlpWith(1, count)), $"the hidden-layer count is {count}");

    [TestMethod]
    [DataRow(0)]
    [DataRow(1 << 21)]
    public void AFeatureCountOutOfRangeIsNamed(int count) => AssertNames(LoadFails(MlpWith(0, count)), $"the feature count is {count}", "1 to 1048576");

    [TestMethod]
    [DataRow(int.MaxValue, "2 to 1048576")]
    [DataRow(1, "2 to 1048576")]
    [DataRow(4, "the 3 label values")]
    public void AClassCountOutOfRangeOrUnlikeTheLabelsIsNamed(int count, string expected) =>
        AssertNames(LoadFails(MlpWith(3, count)), $"the class count is {count}", expected);

    [TestMethod]
    public void AnUnknownActivationIsNamed() => AssertNames(LoadFails(MlpWith(4, 99)), "Activation is 99");

    [TestMethod]
    [DataRow(1f)]
    [DataRow(float.NaN)]
    public void ADropoutOutsideZeroToOneIsNamed(float dropout) =>
        AssertNames(LoadFails(MlpWith(5, BitConverter.SingleToInt32Bits(dropout))), $"Dropout is {dropout}", "[0, 1)");

    // ZeroTransformer.Save writes the scoring batch size, then the label values' type (0: text) and count.
    [TestMethod]
    [DataRow(0)]
    [DataRow(-5)]
    [DataRow(int.MaxValue)]
    public void AScoringBatchSizeOutOfRangeIsNamed(int size) =>
        AssertNames(LoadFails(Patched(_mlpZip, "Model.key", bytes => PatchInt(bytes, new[] { ScoringBatchSize, 0, 3 }, 0, size))),
            $"ScoringBatchSize is {size}", "1 to 1048576");

    [TestMethod]
    [DataRow(int.MaxValue)]
    [DataRow(0)]
    public void ALabelCountBeyondTheEntryIsNamed(int count) =>
        AssertNames(LoadFails(Patched(_mlpZip, "Model.key", bytes => PatchInt(bytes, new[] { ScoringBatchSize, 0, 3 }, 2, count))),
            $"the label count is {count}");

    [TestMethod]
    public void TruncatedOrOversizedWeightsAreNamed()
    {
        AssertNames(LoadFails(Patched(_mlpZip, "TorchWeights.bin", bytes => bytes[..(bytes.Length / 2)])), "TorchWeights.bin");
        AssertNames(LoadFails(Patched(_mlpZip, "TorchWeights.bin", bytes => bytes[..^1])), "TorchWeights.bin");
        AssertNames(LoadFails(Patched(_mlpZip, "TorchWeights.bin", bytes => [.. bytes, 0])), "TorchWeights.bin", "1 byte(s) after");
        // The first tensor's first dimension (after the entry count, its name, dtype and rank), set to 2^40 as LEB128.
        AssertNames(LoadFails(Patched(_mlpZip, "TorchWeights.bin", bytes =>
        {
            int dims = 1 + 1 + "layers.0.weight".Length + 1 + 1;
            Assert.AreEqual(HiddenSize, bytes[dims]);
            return [.. bytes[..dims], 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, .. bytes[(dims + 1)..]];
        })), "TorchWeights.bin", "'layers.0.weight'", "[1099511627776, 4]");
    }

    [TestMethod]
    public void AFailedLoadDisposesTheModelItBuilt()
    {
        var mlContext = new MLContext(seed: 0);
        var model = mlContext.Zero().Trainer(new ZeroTrainerOptions { ModelFactory = new DisposalRecordingFactory(), MaxEpoch = 1 }).Fit(IrisFixtures.Prepared(mlContext));
        string zip = _folder!.Combine("recording.zip");
        mlContext.Model.Save(model, IrisFixtures.Prepared(mlContext).Schema, zip);
        model.Dispose();
        // linear.weight [3, 4] stored as [4, 3]: the same count of weights, so the module is built before its load fails.
        string swapped = Patched(zip, "TorchWeights.bin", bytes =>
        {
            int dims = 1 + 1 + "linear.weight".Length + 1 + 1;
            (bytes[dims], bytes[dims + 1]) = (bytes[dims + 1], bytes[dims]);
            return bytes;
        });
        int built = DisposalRecordingFactory.Created.Count;
        AssertNames(LoadFails(swapped), "TorchWeights.bin", "does not fit the model", "Mismatched tensor shape");
        Assert.AreEqual(built + 1, DisposalRecordingFactory.Created.Count, "the loader built the module");
        Assert.IsTrue(DisposalRecordingFactory.Created[^1].Disposed, "the failed load left the module's native tensors alive");
    }

    [TestMethod]
    public void TrainingHoldsTheLimitsALoadChecks()
    {
        // What trains must load: the sizes a load refuses are refused when training starts.
        var mlContext = new MLContext(seed: 0);
        (string Option, object Value, ZeroTrainerOptions Options)[] cases =
        {
            ("HiddenLayerSizes[0]", 1048577, new ZeroTrainerOptions { HiddenLayerSizes = new[] { 1048577 } }),
            ("HiddenLayerSizes.Length", 1025, new ZeroTrainerOptions { HiddenLayerSizes = Enumerable.Repeat(8, 1025).ToArray() }),
            ("ScoringBatchSize", 1048577, new ZeroTrainerOptions { ScoringBatchSize = 1048577 }),
        };
        foreach (var (option, value, options) in cases)
        {
            var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().Trainer(options), option);
            StringAssert.Contains(error.Message, $"ZeroTrainerOptions.{option} is {value}", option);
        }
        var text = new ZeroTextClassificationOptions { CheckpointPath = "unused", Sentence1ColumnName = "Text", ScoringBatchSize = 1048577 };
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => mlContext.Zero().TextClassification(text)).Message,
            "ZeroTextClassificationOptions.ScoringBatchSize is 1048577");

        var features = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Data.TabularColumns.CheckFeatureType(
            new Data.ColumnOption("Features", "ZeroTrainerOptions.FeatureColumnName"), new VectorDataViewType(NumberDataViewType.Single, 1048577)));
        StringAssert.Contains(features.Message, "Feature column 'Features' has 1048577 values; expected at most 1048576");
        var labels = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Data.ColumnChecks.CheckLabelType(
            new Data.ColumnOption("Label", "ZeroTrainerOptions.LabelColumnName"), new KeyDataViewType(typeof(uint), 1048577)));
        StringAssert.Contains(labels.Message, "Label column 'Label' has 1048577 classes; expected at most 1048576");
    }

    // BertScorer.Save writes the class count, lower-casing (a byte) and the maximum sequence length after the config.
    private static string BertWith(int index, int value) => Patched(_bertZip, "Model.key", bytes =>
    {
        byte[] run = [.. BitConverter.GetBytes(2), 1, .. BitConverter.GetBytes(MaxSequenceLength)];
        int at = bytes.AsSpan().IndexOf(run);
        Assert.IsTrue(at >= 0);
        BitConverter.GetBytes(value).CopyTo(bytes, at + (index == 0 ? 0 : 5));
        return bytes;
    });

    private static string BertConfigWith(string from, string to) => Patched(_bertZip, "Model.key", bytes =>
    {
        Assert.AreEqual(from.Length, to.Length);
        string text = Encoding.Latin1.GetString(bytes);
        Assert.IsTrue(text.Contains(from), from);
        return Encoding.Latin1.GetBytes(text.Replace(from, to));
    });

    [TestMethod]
    [DataRow(0, int.MaxValue, "the class count is 2147483647")]
    [DataRow(0, 3, "the 2 label values")]
    [DataRow(1, 0, "MaxSequenceLength is 0")]
    [DataRow(1, 97, "MaxSequenceLength is 97")]
    public void BertSizesOutOfRangeAreNamed(int index, int value, string expected) => AssertNames(LoadFails(BertWith(index, value)), expected);

    [TestMethod]
    public void ABertConfigOutOfRangeIsNamed()
    {
        AssertNames(LoadFails(BertConfigWith("\"hidden_dropout_prob\":0.1", "\"hidden_dropout_prob\":1.0")), "'hidden_dropout_prob' is 1");
        // In range, but the weights hold two layers.
        AssertNames(LoadFails(BertConfigWith("\"num_hidden_layers\":2", "\"num_hidden_layers\":9")), "TorchWeights.bin", "imply");
    }

    // Found by ReaderFuzzTests: the tokenizer's ArgumentException ("The special token '[SEP]' is not in the
    // vocabulary") named neither the zip nor its entry.
    [TestMethod]
    public void ABertVocabularyWithoutItsSpecialTokensIsNamed()
    {
        var error = LoadFails(Patched(_bertZip, "vocab.txt", bytes => Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(bytes).Replace("[SEP]", "[SEQ]"))));
        AssertNames(error, "/vocab.txt'", "is not a BERT WordPiece vocabulary", "'[SEP]'");
    }

    // Found by ReaderFuzzTests: the BERT config inside Model.key reached JsonNode unguarded, so a damaged one threw
    // JsonReaderException (or InvalidOperationException for a key of the wrong kind), naming no entry.
    [TestMethod]
    [DataRow("\"vocab_size\"", "\"vocab\u0000size\"", "is not valid JSON")]
    [DataRow("\"model_type\":\"bert\"", "\"model_type\":123456", "'model_type' is 123456; expected a string")]
    [DataRow("\"hidden_act\":\"gelu\"", "\"hidden_act\":[1,22]", "'hidden_act' is [1,22]; expected a string")]
    public void ADamagedBertConfigIsNamed(string from, string to, string expected) =>
        AssertNames(LoadFails(BertConfigWith(from, to)), "Model.key (its BERT config)", expected);

    // Found by ReaderFuzzTests: a label value's length prefix past the end of the entry threw EndOfStreamException,
    // a negative one IOException.
    [TestMethod]
    [DataRow(new byte[] { 0xFF, 0x7F }, "Unable to read beyond the end of the stream")] // 16383 bytes, more than the entry holds
    [DataRow(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x0F }, "invalid string length of -1")]
    public void ALabelValueWithALengthPastTheEntryIsNamed(byte[] length, string expected)
    {
        string zip = Patched(_mlpZip, "Model.key", bytes =>
        {
            // After the scoring batch size, the label values' type (0: text) and count (3), the first value's 7-bit length.
            byte[] run = new[] { ScoringBatchSize, 0, 3 }.SelectMany(BitConverter.GetBytes).ToArray();
            int at = bytes.AsSpan().IndexOf(run) + run.Length;
            length.CopyTo(bytes, at); // over the length and the value's first characters
            return bytes;
        });
        AssertNames(LoadFails(zip), "TransformerChain/Transform_002/Model.key", "ends inside a field or holds a malformed one", expected);
    }

    // Seen among ReaderFuzzTests' outcomes (a FormatException is allowed there): ML.NET's string table check threw
    // "Corrupt model file", which named no entry.
    [TestMethod]
    public void AColumnNameMissingFromTheStringTableIsNamed()
    {
        // The prediction column's name is an id into Model.key's string table, written just before the scoring batch size.
        string zip = Patched(_mlpZip, "Model.key", bytes =>
        {
            byte[] run = new[] { ScoringBatchSize, 0, 3 }.SelectMany(BitConverter.GetBytes).ToArray();
            BitConverter.GetBytes(999).CopyTo(bytes, bytes.AsSpan().IndexOf(run) - 4);
            return bytes;
        });
        AssertNames(LoadFails(zip), "TransformerChain/Transform_002/Model.key", "ends inside a field or holds a malformed one");
    }

    // Found by ReaderFuzzTests: a tensor name's negative length prefix in TorchWeights.bin threw IOException.
    [TestMethod]
    public void AWeightNameWithANegativeLengthIsNamed()
    {
        // The entry count (one LEB128 byte), then the first name's 7-bit length, here -1.
        string zip = Patched(_mlpZip, "TorchWeights.bin", bytes => [bytes[0], 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, .. bytes[2..]]);
        AssertNames(LoadFails(zip), "TorchWeights.bin", "a tensor's name is malformed", "invalid string length of -1");
    }

    [TestMethod]
    public void ABertVocabularyLargerThanTheConfigIsNamed()
    {
        var error = LoadFails(Patched(_bertZip, "vocab.txt", bytes => [.. bytes, .. "extra\n"u8]));
        AssertNames(error, "9 tokens", "vocab_size is 8");
    }
}

/// <summary>A one-layer module that records its disposal, for checking that a failed load frees what it built.</summary>
public sealed class DisposalRecordingFactory : ZeroModelFactory
{
    public static List<RecordingLinear> Created { get; } = new();

    public override nn.Module<Tensor, Tensor> CreateModel(int featureCount, int classCount)
    {
        var module = new RecordingLinear(featureCount, classCount);
        lock (Created)
            Created.Add(module);
        return module;
    }
}

public sealed class RecordingLinear : nn.Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.Linear linear;

    public RecordingLinear(int inputs, int outputs) : base(nameof(RecordingLinear))
    {
        linear = nn.Linear(inputs, outputs);
        RegisterComponents();
    }

    public bool Disposed { get; private set; }

    public override Tensor forward(Tensor input) => linear.call(input);

    protected override void Dispose(bool disposing)
    {
        Disposed = true;
        base.Dispose(disposing);
    }
}
