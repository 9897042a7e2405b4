using System.Buffers.Binary;
using Google.Protobuf;
using Onnx;

namespace Microsoft.ML.Zero.Models.Bert;

/// <summary>
/// Reads an ONNX model with the generated ONNX classes (OnnxSharp over Google.Protobuf) and refuses, naming the file,
/// what the classes accept but a reader of weights cannot use: no graph, initializers stored in a side file or sharing a
/// name, and dims whose product exceeds what the file can hold (so later element counts neither overflow nor size a huge array).
/// </summary>
internal static class OnnxModelFile
{
    /// <summary>Parses the model and checks every tensor of its main graph: the initializers and the nodes' tensor attributes.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a well-formed ONNX model; the message names the file.</exception>
    public static ModelProto Read(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"ONNX model '{path}' does not exist.", path);
        ModelProto model;
        long fileLength;
        try
        {
            // From the stream, not a byte array of the whole file: the parsed tensors hold their own copy of the data.
            using var stream = File.OpenRead(path);
            fileLength = stream.Length;
            model = ModelProto.Parser.ParseFrom(stream);
        }
        // Every parse failure, invalid UTF-8 in a string included, is an InvalidProtocolBufferException.
        catch (InvalidProtocolBufferException e)
        {
            throw Malformed(path, e.Message.TrimEnd('.'), e);
        }

        var graph = model.Graph ?? throw Malformed(path, "no graph (ModelProto field 7); is this an ONNX model?");
        var tensors = graph.Initializer.Concat(graph.Node.SelectMany(node => node.Attribute).Select(attribute => attribute.T).OfType<TensorProto>());
        foreach (var tensor in tensors)
            CheckStoredInFile(tensor, path, fileLength);
        return model;
    }

    /// <summary>The graph's initializers by name.</summary>
    /// <exception cref="InvalidDataException">Two initializers share a name.</exception>
    public static Dictionary<string, TensorProto> Initializers(GraphProto graph, string path)
    {
        var byName = new Dictionary<string, TensorProto>();
        foreach (var tensor in graph.Initializer)
            if (!byName.TryAdd(tensor.Name, tensor))
                throw Malformed(path, $"initializer '{tensor.Name}' appears twice");
        return byName;
    }

    /// <summary>The node's attribute of that name, or null; when a name repeats, the last one counts.</summary>
    public static AttributeProto? Attribute(NodeProto node, string name) => node.Attribute.LastOrDefault(attribute => attribute.Name == name);

    private static void CheckStoredInFile(TensorProto tensor, string path, long fileLength)
    {
        if (tensor.DataLocation == TensorProto.Types.DataLocation.External)
            throw Malformed(path, $"tensor '{tensor.Name}' stores its data in an external file, which is not supported");

        // Every element of an initializer is stored in the file, so the dims' product is at most the file's length.
        // Checked factor by factor so that it cannot overflow.
        long elements = 1;
        foreach (long dim in tensor.Dims)
        {
            if (dim < 0 || dim > 0 && elements > fileLength / dim)
                throw Malformed(path, $"tensor '{tensor.Name}' has dims [{string.Join(", ", tensor.Dims)}], more elements than the {fileLength}-byte file holds");
            elements *= dim;
        }
    }

    private static InvalidDataException Malformed(string path, string what, Exception? inner = null) =>
        new($"'{path}' is not a valid ONNX model: {what}.", inner);
}

/// <summary>
/// The values of a TensorProto that <see cref="OnnxModelFile.Read"/> checked, whichever field holds them, after
/// checking the data type and that there is one value per element; errors name the file, the tensor and its shape.
/// </summary>
internal static class OnnxTensorValues
{
    /// <summary>ONNX TensorProto.DataType values the importer reads.</summary>
    public const int Float = (int)TensorProto.Types.DataType.Float, Int32 = (int)TensorProto.Types.DataType.Int32,
        Int64 = (int)TensorProto.Types.DataType.Int64;

    /// <summary>The product of the dims; within a long for a tensor whose dims <see cref="OnnxModelFile.Read"/> checked.</summary>
    public static long ElementCount(this TensorProto tensor) => tensor.Dims.Aggregate(1L, (count, dim) => count * dim);

    /// <summary>The dims as written in messages: [a,b,c].</summary>
    public static string Shape(this TensorProto tensor) => $"[{string.Join(",", tensor.Dims)}]";

    /// <summary>The values as float32, whether stored in raw_data (little-endian) or float_data.</summary>
    public static float[] ToFloats(this TensorProto tensor, string path)
    {
        Require(tensor, Float, path);
        return tensor.RawData.IsEmpty
            ? CheckCount(tensor, tensor.FloatData.ToArray(), path)
            : ReadRaw(tensor, sizeof(float), path, (bytes, i) => BinaryPrimitives.ReadSingleLittleEndian(bytes[(i * 4)..]));
    }

    /// <summary>The values as int64, from raw_data, int64_data or (for INT32 tensors) int32_data.</summary>
    public static long[] ToInt64s(this TensorProto tensor, string path)
    {
        if (tensor.DataType == Int32)
        {
            return tensor.RawData.IsEmpty
                ? CheckCount(tensor, tensor.Int32Data.Select(value => (long)value).ToArray(), path)
                : ReadRaw(tensor, sizeof(int), path, (bytes, i) => (long)BinaryPrimitives.ReadInt32LittleEndian(bytes[(i * 4)..]));
        }

        Require(tensor, Int64, path);
        return tensor.RawData.IsEmpty
            ? CheckCount(tensor, tensor.Int64Data.ToArray(), path)
            : ReadRaw(tensor, sizeof(long), path, (bytes, i) => BinaryPrimitives.ReadInt64LittleEndian(bytes[(i * 8)..]));
    }

    private delegate T Element<T>(ReadOnlySpan<byte> bytes, int index);

    private static T[] ReadRaw<T>(TensorProto tensor, int size, string path, Element<T> read)
    {
        var bytes = tensor.RawData.Span;
        long expected = tensor.ElementCount();
        if (bytes.Length != expected * size)
            throw new InvalidDataException(
                $"'{path}': tensor '{tensor.Name}' of shape {tensor.Shape()} holds {bytes.Length} bytes of raw_data, expected {expected} values of {size} bytes.");
        var values = new T[expected];
        for (int i = 0; i < values.Length; i++)
            values[i] = read(bytes, i);
        return values;
    }

    private static void Require(TensorProto tensor, int dataType, string path)
    {
        if (tensor.DataType != dataType)
            throw new InvalidDataException($"'{path}': tensor '{tensor.Name}' has ONNX data type {tensor.DataType}, expected {dataType}.");
    }

    private static T[] CheckCount<T>(TensorProto tensor, T[] values, string path)
    {
        if (values.LongLength != tensor.ElementCount())
            throw new InvalidDataException(
                $"'{path}': tensor '{tensor.Name}' of shape {tensor.Shape()} holds {values.LongLength} values, expected {tensor.ElementCount()}.");
        return values;
    }
}
