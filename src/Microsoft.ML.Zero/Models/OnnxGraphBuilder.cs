using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Models;

/// <summary>
/// Builds an ONNX graph node by node: weights become fp32 initializers under their state-dict names, every node's output
/// gets a fresh name, and <see cref="ToModel"/> wraps the graph in a model of opset <see cref="Opset"/>.
/// </summary>
internal sealed class OnnxGraphBuilder
{
    /// <summary>Opset 17 has LayerNormalization, and ONNX Runtime 1.14 and later run it.</summary>
    public const int Opset = 17;

    /// <summary>The IR version that opset 17 came with (ONNX 1.12).</summary>
    private const long IrVersion = 8;

    /// <summary>The dimension name of the rows of a batch, dynamic in every input and output.</summary>
    public const string BatchDimension = "batch";

    private readonly GraphProto _graph;
    private readonly Dictionary<string, int> _namesUsed = new();

    public OnnxGraphBuilder(string graphName) => _graph = new GraphProto { Name = graphName };

    /// <summary>Adds a weight, in fp32 whatever precision it was trained in, under <paramref name="name"/>.</summary>
    public string Weight(string name, Tensor weight)
    {
        if (Unique(name) != name)
            throw new InvalidOperationException($"The graph already has a value named '{name}'.");
        using var values = weight.detach().to(ScalarType.Float32).cpu().contiguous();
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        tensor.Dims.AddRange(values.shape);
        tensor.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.data<float>().ToArray().AsSpan()));
        _graph.Initializer.Add(tensor);
        return name;
    }

    /// <summary>An int64 constant, a vector of <paramref name="values"/> or, with <paramref name="scalar"/>, one value of rank 0.</summary>
    public string Int64s(string name, long[] values, bool scalar = false)
    {
        var tensor = new TensorProto { Name = Unique(name), DataType = (int)TensorProto.Types.DataType.Int64 };
        if (!scalar)
            tensor.Dims.Add(values.Length);
        tensor.Int64Data.AddRange(values);
        _graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    /// <summary>An fp32 scalar constant.</summary>
    public string Float(string name, float value)
    {
        var tensor = new TensorProto { Name = Unique(name), DataType = (int)TensorProto.Types.DataType.Float };
        tensor.FloatData.Add(value);
        _graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    /// <summary>A graph input; a dimension is a number or the name of a dynamic one.</summary>
    public string Input(string name, TensorProto.Types.DataType type, params object[] dimensions)
    {
        _graph.Input.Add(ValueInfo(name, type, dimensions));
        return name;
    }

    /// <summary>Makes <paramref name="value"/> a graph output named <paramref name="name"/>.</summary>
    public void Output(string name, string value, TensorProto.Types.DataType type, params object[] dimensions)
    {
        if (Node("Identity", new[] { value }, name) != name)
            throw new InvalidOperationException($"The graph already has a value named '{name}'.");
        _graph.Output.Add(ValueInfo(name, type, dimensions));
    }

    /// <summary>Adds a node of <paramref name="op"/> and returns its output: <paramref name="output"/>, or that with a counter when taken.</summary>
    public string Node(string op, string[] inputs, string output, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = Unique($"{op}:{output}") };
        node.Input.AddRange(inputs);
        string name = Unique(output);
        node.Output.Add(name);
        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
        return name;
    }

    /// <summary>x W^T + b for a Linear layer's [out, in] weight, on inputs of any rank (MatMul broadcasts; Gemm would need 2-D).</summary>
    public string Linear(string input, string weight, string bias, string output)
    {
        var transposed = Node("Transpose", new[] { weight }, $"{weight}.T", Ints("perm", 1, 0));
        return Node("Add", new[] { Node("MatMul", new[] { input, transposed }, $"{output}.matmul"), bias }, output);
    }

    /// <summary>The serialized model: this graph, the default opset <see cref="Opset"/>, and who produced it.</summary>
    public byte[] ToModel(string docString)
    {
        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "Microsoft.ML.Zero",
            ProducerVersion = typeof(OnnxGraphBuilder).Assembly.GetName().Version?.ToString() ?? "",
            DocString = docString,
            Graph = _graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        return model.ToByteArray();
    }

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto FloatAttribute(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    // Node outputs must be unique in a graph; a name asked for twice gets a counter.
    private string Unique(string name)
    {
        int count = _namesUsed.GetValueOrDefault(name);
        _namesUsed[name] = count + 1;
        return count == 0 ? name : $"{name}_{count}";
    }

    private static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, object[] dimensions)
    {
        var shape = new TensorShapeProto();
        foreach (var dimension in dimensions)
            shape.Dim.Add(dimension is string parameter
                ? new TensorShapeProto.Types.Dimension { DimParam = parameter }
                : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(dimension) });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }
}
