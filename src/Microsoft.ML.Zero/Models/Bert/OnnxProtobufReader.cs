using System.Buffers.Binary;
using System.Text;

namespace Microsoft.ML.Zero.Models.Bert;

/// <summary>An ONNX initializer or constant (TensorProto). Data stays a slice of the file's bytes until asked for.</summary>
internal sealed class OnnxTensor
{
    /// <summary>ONNX TensorProto.DataType values this importer understands.</summary>
    public const int Float = 1, Int32 = 6, Int64 = 7;

    public string Name { get; init; } = "";

    public long[] Dims { get; init; } = Array.Empty<long>();

    public int DataType { get; init; }

    internal ReadOnlyMemory<byte> RawData { get; init; }

    internal float[] FloatData { get; init; } = Array.Empty<float>();

    internal long[] Int64Data { get; init; } = Array.Empty<long>();

    internal int[] Int32Data { get; init; } = Array.Empty<int>();

    public long ElementCount => Dims.Aggregate(1L, (count, dim) => count * dim);

    /// <summary>The values as float32, whether stored in raw_data (little-endian) or float_data.</summary>
    public float[] ToFloats(string fileName)
    {
        Require(Float, fileName);
        float[] values = RawData.IsEmpty ? FloatData : ReadRaw(RawData.Span, sizeof(float), (s, i) => BinaryPrimitives.ReadSingleLittleEndian(s[(i * 4)..]));
        return CheckCount(values, fileName);
    }

    /// <summary>The values as int64, from raw_data, int64_data or (for INT32 tensors) int32_data.</summary>
    public long[] ToInt64s(string fileName)
    {
        if (DataType == Int32)
        {
            long[] widened = RawData.IsEmpty
                ? Int32Data.Select(v => (long)v).ToArray()
                : ReadRaw(RawData.Span, sizeof(int), (s, i) => (long)BinaryPrimitives.ReadInt32LittleEndian(s[(i * 4)..]));
            return CheckCount(widened, fileName);
        }

        Require(Int64, fileName);
        long[] values = RawData.IsEmpty ? Int64Data : ReadRaw(RawData.Span, sizeof(long), (s, i) => BinaryPrimitives.ReadInt64LittleEndian(s[(i * 8)..]));
        return CheckCount(values, fileName);
    }

    private delegate T Element<T>(ReadOnlySpan<byte> bytes, int index);

    private static T[] ReadRaw<T>(ReadOnlySpan<byte> bytes, int size, Element<T> read)
    {
        var values = new T[bytes.Length / size];
        for (int i = 0; i < values.Length; i++)
            values[i] = read(bytes, i);
        return values;
    }

    private void Require(int dataType, string fileName)
    {
        if (DataType != dataType)
            throw new InvalidDataException($"'{fileName}': tensor '{Name}' has ONNX data type {DataType}, expected {dataType}.");
    }

    private T[] CheckCount<T>(T[] values, string fileName)
    {
        if (values.LongLength != ElementCount)
            throw new InvalidDataException(
                $"'{fileName}': tensor '{Name}' of shape [{string.Join(",", Dims)}] holds {values.LongLength} values, expected {ElementCount}.");
        return values;
    }
}

/// <summary>One attribute of a node (AttributeProto); only the kinds a BERT export uses.</summary>
internal sealed class OnnxAttribute
{
    public string Name { get; init; } = "";

    public long Int { get; init; }

    public float Float { get; init; }

    public long[] Ints { get; init; } = Array.Empty<long>();

    public OnnxTensor? Tensor { get; init; }
}

/// <summary>One operator of the graph (NodeProto).</summary>
internal sealed class OnnxNode
{
    public string Name { get; init; } = "";

    public string OpType { get; init; } = "";

    public IReadOnlyList<string> Inputs { get; init; } = Array.Empty<string>();

    public IReadOnlyList<string> Outputs { get; init; } = Array.Empty<string>();

    public IReadOnlyDictionary<string, OnnxAttribute> Attributes { get; init; } = new Dictionary<string, OnnxAttribute>();
}

/// <summary>The main graph of an ONNX model: its nodes in file order and its initializers by name.</summary>
internal sealed class OnnxGraph
{
    public IReadOnlyList<OnnxNode> Nodes { get; init; } = Array.Empty<OnnxNode>();

    public IReadOnlyDictionary<string, OnnxTensor> Initializers { get; init; } = new Dictionary<string, OnnxTensor>();
}

/// <summary>
/// A minimal reader of the protobuf wire format for ONNX ModelProto, enough to walk the graph and read initializers.
/// Hand-written so the library needs no Google.Protobuf and no generated code; unknown fields are skipped.
/// </summary>
internal sealed class OnnxProtobufReader
{
    private const int WireVarint = 0, WireFixed64 = 1, WireLengthDelimited = 2, WireFixed32 = 5;

    private readonly string _fileName;
    private readonly long _fileLength;

    private OnnxProtobufReader(string fileName, long fileLength) => (_fileName, _fileLength) = (fileName, fileLength);

    /// <summary>Reads the graph (ModelProto field 7) of an ONNX file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a well-formed ONNX model; the message names the file.</exception>
    public static OnnxGraph ReadGraph(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"ONNX model '{path}' does not exist.", path);
        byte[] bytes = File.ReadAllBytes(path);
        return new OnnxProtobufReader(path, bytes.Length).ReadModel(bytes);
    }

    private OnnxGraph ReadModel(ReadOnlyMemory<byte> bytes)
    {
        OnnxGraph? graph = null;
        var message = new Message(bytes, this);
        while (message.Next(out int field, out int wireType))
        {
            if (field == 7 && wireType == WireLengthDelimited)
                graph = ReadGraph(message.Bytes());
            else
                message.Skip(wireType);
        }

        return graph ?? throw Malformed("no graph (ModelProto field 7); is this an ONNX model?");
    }

    private OnnxGraph ReadGraph(ReadOnlyMemory<byte> bytes)
    {
        var nodes = new List<OnnxNode>();
        var initializers = new Dictionary<string, OnnxTensor>();
        var message = new Message(bytes, this);
        while (message.Next(out int field, out int wireType))
        {
            if (field == 1 && wireType == WireLengthDelimited)
                nodes.Add(ReadNode(message.Bytes()));
            else if (field == 5 && wireType == WireLengthDelimited)
            {
                var tensor = ReadTensor(message.Bytes());
                if (!initializers.TryAdd(tensor.Name, tensor))
                    throw Malformed($"initializer '{tensor.Name}' appears twice");
            }
            else
                message.Skip(wireType);
        }

        return new OnnxGraph { Nodes = nodes, Initializers = initializers };
    }

    private OnnxNode ReadNode(ReadOnlyMemory<byte> bytes)
    {
        var inputs = new List<string>();
        var outputs = new List<string>();
        var attributes = new Dictionary<string, OnnxAttribute>();
        string name = "", opType = "";
        var message = new Message(bytes, this);
        while (message.Next(out int field, out int wireType))
        {
            switch (field, wireType)
            {
                case (1, WireLengthDelimited): inputs.Add(message.String()); break;
                case (2, WireLengthDelimited): outputs.Add(message.String()); break;
                case (3, WireLengthDelimited): name = message.String(); break;
                case (4, WireLengthDelimited): opType = message.String(); break;
                case (5, WireLengthDelimited):
                    var attribute = ReadAttribute(message.Bytes());
                    attributes[attribute.Name] = attribute;
                    break;
                default: message.Skip(wireType); break;
            }
        }

        return new OnnxNode { Name = name, OpType = opType, Inputs = inputs, Outputs = outputs, Attributes = attributes };
    }

    private OnnxAttribute ReadAttribute(ReadOnlyMemory<byte> bytes)
    {
        string name = "";
        long integer = 0;
        float real = 0;
        var ints = new List<long>();
        OnnxTensor? tensor = null;
        var message = new Message(bytes, this);
        while (message.Next(out int field, out int wireType))
        {
            switch (field, wireType)
            {
                case (1, WireLengthDelimited): name = message.String(); break;
                case (2, WireFixed32): real = BitConverter.Int32BitsToSingle((int)message.Fixed32()); break;
                case (3, WireVarint): integer = (long)message.Varint(); break;
                case (5, WireLengthDelimited): tensor = ReadTensor(message.Bytes()); break;
                case (8, _): message.RepeatedInt64(wireType, ints); break;
                default: message.Skip(wireType); break;
            }
        }

        return new OnnxAttribute { Name = name, Int = integer, Float = real, Ints = ints.ToArray(), Tensor = tensor };
    }

    private OnnxTensor ReadTensor(ReadOnlyMemory<byte> bytes)
    {
        var dims = new List<long>();
        var floats = new List<float>();
        var int32s = new List<long>();
        var int64s = new List<long>();
        int dataType = 0;
        string name = "";
        ReadOnlyMemory<byte> raw = default;
        var message = new Message(bytes, this);
        while (message.Next(out int field, out int wireType))
        {
            switch (field, wireType)
            {
                case (1, _): message.RepeatedInt64(wireType, dims); break;
                case (2, WireVarint): dataType = (int)message.Varint(); break;
                case (4, _): message.RepeatedFloat(wireType, floats); break;
                case (5, _): message.RepeatedInt64(wireType, int32s); break;
                case (7, _): message.RepeatedInt64(wireType, int64s); break;
                case (8, WireLengthDelimited): name = message.String(); break;
                case (9, WireLengthDelimited): raw = message.Bytes(); break;
                case (14, WireVarint):
                    // data_location EXTERNAL: the weights live in a side file this reader does not follow.
                    if (message.Varint() == 1)
                        throw Malformed($"tensor '{name}' stores its data in an external file, which is not supported");
                    break;
                default: message.Skip(wireType); break;
            }
        }

        // Every element of an initializer is stored in the file, so the dims' product is at most the file's length. Checked
        // here, factor by factor so that it cannot overflow, before anything is sized by ElementCount.
        long elements = 1;
        foreach (long dim in dims)
        {
            if (dim < 0 || dim > 0 && elements > _fileLength / dim)
                throw Malformed($"tensor '{name}' has dims [{string.Join(", ", dims)}], more elements than the {_fileLength}-byte file holds");
            elements *= dim;
        }

        return new OnnxTensor
        {
            Name = name,
            Dims = dims.ToArray(),
            DataType = dataType,
            RawData = raw,
            FloatData = floats.ToArray(),
            Int32Data = int32s.Select(v => (int)v).ToArray(),
            Int64Data = int64s.ToArray(),
        };
    }

    private InvalidDataException Malformed(string what) =>
        new($"'{_fileName}' is not a valid ONNX model: {what}.");

    /// <summary>A cursor over one protobuf message's bytes.</summary>
    private struct Message
    {
        private readonly ReadOnlyMemory<byte> _bytes;
        private readonly OnnxProtobufReader _owner;
        private int _position;

        public Message(ReadOnlyMemory<byte> bytes, OnnxProtobufReader owner)
        {
            _bytes = bytes;
            _owner = owner;
            _position = 0;
        }

        private readonly bool AtEnd => _position >= _bytes.Length;

        public bool Next(out int field, out int wireType)
        {
            field = wireType = 0;
            if (AtEnd)
                return false;
            ulong tag = Varint();
            field = (int)(tag >> 3);
            wireType = (int)(tag & 7);
            if (field == 0)
                throw _owner.Malformed($"field number 0 at byte {_position}");
            return true;
        }

        public ulong Varint()
        {
            ulong value = 0;
            var span = _bytes.Span;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (AtEnd)
                    throw _owner.Malformed("truncated varint");
                byte b = span[_position++];
                value |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0)
                    return value;
            }

            throw _owner.Malformed("varint longer than 10 bytes");
        }

        public uint Fixed32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4).Span);

        public ReadOnlyMemory<byte> Bytes()
        {
            ulong length = Varint();
            if (length > (ulong)(_bytes.Length - _position))
                throw _owner.Malformed($"a field of {length} bytes runs past the end of its message (file truncated?)");
            return Take((int)length);
        }

        public string String() => Encoding.UTF8.GetString(Bytes().Span);

        /// <summary>Repeated int64/int32 field, packed (one length-delimited run) or not (one varint per tag).</summary>
        public void RepeatedInt64(int wireType, List<long> values)
        {
            if (wireType == WireVarint)
            {
                values.Add((long)Varint());
                return;
            }

            ExpectPacked(wireType);
            var packed = new Message(Bytes(), _owner);
            while (!packed.AtEnd)
                values.Add((long)packed.Varint());
        }

        public void RepeatedFloat(int wireType, List<float> values)
        {
            if (wireType == WireFixed32)
            {
                values.Add(BitConverter.Int32BitsToSingle((int)Fixed32()));
                return;
            }

            ExpectPacked(wireType);
            var packed = Bytes().Span;
            if (packed.Length % 4 != 0)
                throw _owner.Malformed("packed float field whose length is not a multiple of 4");
            for (int i = 0; i < packed.Length; i += 4)
                values.Add(BinaryPrimitives.ReadSingleLittleEndian(packed[i..]));
        }

        public void Skip(int wireType)
        {
            switch (wireType)
            {
                case WireVarint: Varint(); break;
                case WireFixed64: Take(8); break;
                case WireLengthDelimited: Bytes(); break;
                case WireFixed32: Take(4); break;
                default: throw _owner.Malformed($"unsupported wire type {wireType} at byte {_position}");
            }
        }

        private readonly void ExpectPacked(int wireType)
        {
            if (wireType != WireLengthDelimited)
                throw _owner.Malformed($"wire type {wireType} for a repeated number field");
        }

        private ReadOnlyMemory<byte> Take(int count)
        {
            if (count > _bytes.Length - _position)
                throw _owner.Malformed($"{count} bytes needed at byte {_position} but the message ends at {_bytes.Length} (file truncated?)");
            var slice = _bytes.Slice(_position, count);
            _position += count;
            return slice;
        }
    }
}
