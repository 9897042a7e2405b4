using System.Buffers.Binary;
using System.Text;
using Google.Protobuf;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.Tensors;
using Onnx;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// A safetensors file or an ONNX initializer whose sizes claim more than the file holds is refused, naming the file
/// and the tensor, before anything is allocated from those sizes.
/// </summary>
[TestClass]
public sealed class WeightFileBoundsTests
{
    private const string TinyConfig = """
        {"model_type":"bert","vocab_size":8,"hidden_size":4,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":8,
         "max_position_embeddings":16,"type_vocab_size":2,"pad_token_id":0}
        """;

    // safetensors: an 8-byte little-endian header length, the JSON header, then the tensor data.
    private static byte[] Safetensors(string header, int dataBytes, ulong? claimedHeaderLength = null) =>
        Safetensors(Encoding.UTF8.GetBytes(header), dataBytes, claimedHeaderLength);

    private static byte[] Safetensors(byte[] json, int dataBytes, ulong? claimedHeaderLength = null)
    {
        var file = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(file, claimedHeaderLength ?? (ulong)json.Length);
        json.CopyTo(file, 8);
        return file;
    }

    // A tiny checkpoint folder whose model.safetensors is the given bytes; the error comes from loading its weights.
    private static InvalidDataException LoadFails(byte[] weights)
    {
        TorchRuntime.EnsureLoaded();
        using var folder = new TempFolder("zero-weights-");
        File.WriteAllText(folder.Combine("config.json"), TinyConfig);
        File.WriteAllLines(folder.Combine("vocab.txt"), new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a" });
        File.WriteAllBytes(folder.Combine("model.safetensors"), weights);
        var checkpoint = BertCheckpoint.Open(folder.Path);
        using var model = new BertModel(checkpoint.Config, new Generator(0));
        var error = Assert.ThrowsExactly<InvalidDataException>(() => checkpoint.LoadInto(model));
        StringAssert.Contains(error.Message, folder.Combine("model.safetensors"));
        return error;
    }

    [TestMethod]
    public void AHeaderLongerThanTheFileIsNamed()
    {
        var error = LoadFails(Safetensors("{}", 0, claimedHeaderLength: 10_000_000));
        StringAssert.Contains(error.Message, "header of 10000000 bytes");
        StringAssert.Contains(error.Message, "the file holds 10 bytes");
    }

    [TestMethod]
    public void AShapeLargerThanItsDataOffsetsIsNamed()
    {
        var error = LoadFails(Safetensors("""{"embeddings.word_embeddings.weight":{"dtype":"F32","shape":[1024,1024],"data_offsets":[0,16]}}""", 16));
        StringAssert.Contains(error.Message, "'embeddings.word_embeddings.weight'");
        StringAssert.Contains(error.Message, "shape [1024, 1024]");
        StringAssert.Contains(error.Message, "4194304 bytes");
    }

    [TestMethod]
    public void DataOffsetsPastTheEndOfTheFileAreNamed()
    {
        var error = LoadFails(Safetensors("""{"embeddings.word_embeddings.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}""", 8));
        StringAssert.Contains(error.Message, "'embeddings.word_embeddings.weight'");
        StringAssert.Contains(error.Message, "data_offsets [0, 16]");
        StringAssert.Contains(error.Message, "8 bytes of tensor data");
    }

    [TestMethod]
    public void AShapeWhoseProductOverflowsIsNamed()
    {
        var error = LoadFails(Safetensors("""{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}""", 0));
        StringAssert.Contains(error.Message, "'w'");
        StringAssert.Contains(error.Message, "shape [4294967296, 4294967296]");
    }

    [TestMethod]
    public void AValidHeaderReachesTheNameCheck()
    {
        // Well formed, but not a BERT's names: the header check lets it through to the existing name check.
        var error = LoadFails(Safetensors("""{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}""", 16));
        StringAssert.Contains(error.Message, "Missing: embeddings.word_embeddings.weight");
    }

    // Found by ReaderFuzzTests: System.Text.Json checks a name's UTF-8 and escapes only when it is read, so such a
    // header passed JsonDocument.Parse and then threw InvalidOperationException, which named no file.
    [TestMethod]
    public void AHeaderNameThatIsNotUtf8IsNamed()
    {
        byte[] header = [.. "{\"w"u8, 0xFF, 0xFE, .. "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"u8];
        StringAssert.Contains(LoadFails(Safetensors(header, 4)).Message, "the safetensors header holds a string that is not valid text");
    }

    [TestMethod]
    public void AHeaderNameWithAnUnpairedSurrogateEscapeIsNamed()
    {
        var error = LoadFails(Safetensors("""{"w\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4));
        StringAssert.Contains(error.Message, "the safetensors header holds a string that is not valid text");
    }

    // A model whose graph holds one float initializer 'w' of these dims and no data.
    private static byte[] OnnxWithInitializer(params long[] dims) =>
        new ModelProto { Graph = new GraphProto { Initializer = { new TensorProto { Name = "w", DataType = (int)TensorProto.Types.DataType.Float, Dims = { dims } } } } }
            .ToByteArray();

    [TestMethod]
    [DataRow(new long[] { 4294967296, 4294967296 })]
    [DataRow(new long[] { -1, 4 })]
    [DataRow(new long[] { 1 << 20, 1 << 20 })]
    public void AnOnnxInitializerWhoseDimsExceedTheFileIsNamed(long[] dims)
    {
        using var folder = new TempFolder("zero-onnx-");
        string path = folder.Combine("model.onnx");
        File.WriteAllBytes(path, OnnxWithInitializer(dims));
        var error = Assert.ThrowsExactly<InvalidDataException>(() => OnnxModelFile.Read(path));
        StringAssert.Contains(error.Message, path);
        StringAssert.Contains(error.Message, $"tensor 'w' has dims [{string.Join(", ", dims)}]");
    }

    [TestMethod]
    public void AnOnnxInitializerWithinTheFileIsRead()
    {
        using var folder = new TempFolder("zero-onnx-");
        string path = folder.Combine("model.onnx");
        File.WriteAllBytes(path, OnnxWithInitializer(2, 0, 3));
        Assert.AreEqual(0, OnnxModelFile.Read(path).Graph.Initializer.Single(tensor => tensor.Name == "w").ElementCount());
    }

    [TestMethod]
    [DataRow(20)]
    [DataRow(25)]
    [DataRow(28)]
    public void AnOnnxInitializerWithRawDataOfTheWrongLengthIsNamed(int length)
    {
        using var folder = new TempFolder("zero-onnx-");
        string path = folder.Combine("model.onnx");
        var tensor = new TensorProto { Name = "w", DataType = (int)TensorProto.Types.DataType.Float, Dims = { 2, 3 }, RawData = ByteString.CopyFrom(new byte[length]) };
        File.WriteAllBytes(path, new ModelProto { Graph = new GraphProto { Initializer = { tensor } } }.ToByteArray());
        var read = OnnxModelFile.Read(path).Graph.Initializer.Single();
        var error = Assert.ThrowsExactly<InvalidDataException>(() => read.ToFloats(path));
        StringAssert.Contains(error.Message, path);
        StringAssert.Contains(error.Message, $"tensor 'w' of shape [2,3] holds {length} bytes of raw_data, expected 6 values of 4 bytes");
    }

    [TestMethod]
    public void AnOnnxInitializerStoredInAnExternalFileIsNamed()
    {
        using var folder = new TempFolder("zero-onnx-");
        string path = folder.Combine("model.onnx");
        var tensor = new TensorProto { Name = "w", DataType = (int)TensorProto.Types.DataType.Float, DataLocation = TensorProto.Types.DataLocation.External };
        File.WriteAllBytes(path, new ModelProto { Graph = new GraphProto { Initializer = { tensor } } }.ToByteArray());
        var error = Assert.ThrowsExactly<InvalidDataException>(() => OnnxModelFile.Read(path));
        StringAssert.Contains(error.Message, $"'{path}' is not a valid ONNX model: tensor 'w' stores its data in an external file");
    }

    [TestMethod]
    public void TwoOnnxInitializersOfOneNameAreNamed()
    {
        using var folder = new TempFolder("zero-onnx-");
        string path = folder.Combine("model.onnx");
        var graph = new GraphProto { Initializer = { new TensorProto { Name = "w" }, new TensorProto { Name = "w" } } };
        File.WriteAllBytes(path, new ModelProto { Graph = graph }.ToByteArray());
        var error = Assert.ThrowsExactly<InvalidDataException>(() => OnnxModelFile.Initializers(OnnxModelFile.Read(path).Graph, path));
        StringAssert.Contains(error.Message, $"'{path}' is not a valid ONNX model: initializer 'w' appears twice");
    }
}
