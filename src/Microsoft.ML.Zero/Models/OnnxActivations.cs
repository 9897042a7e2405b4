namespace Microsoft.ML.Zero.Models;

/// <summary>The graph names every exported classifier shares, and GELU spelled out (ONNX has a Gelu op only from opset 20).</summary>
internal static class OnnxOutputs
{
    /// <summary>Class logits, fp32 [batch, classes].</summary>
    public const string Logits = "logits";

    /// <summary>The softmax of the logits, fp32 [batch, classes]: what the ML.NET model's Score column holds.</summary>
    public const string Probabilities = "probabilities";
}

/// <summary>Activations that opset 17 has no single op for.</summary>
internal static class OnnxActivations
{
    /// <summary>x * 0.5 * (1 + erf(x / sqrt 2)), libtorch's exact GELU.</summary>
    public static string GeluErf(OnnxGraphBuilder graph, string x)
    {
        var erf = graph.Node("Erf", new[] { graph.Node("Div", new[] { x, graph.Float("sqrt2", MathF.Sqrt(2)) }, "gelu.scaled") }, "gelu.erf");
        var onePlus = graph.Node("Add", new[] { erf, graph.Float("one", 1) }, "gelu.one_plus");
        return graph.Node("Mul", new[] { graph.Node("Mul", new[] { x, onePlus }, "gelu.product"), graph.Float("half", 0.5f) }, "gelu");
    }

    /// <summary>0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), the tanh approximation (Hugging Face's gelu_new).</summary>
    public static string GeluTanh(OnnxGraphBuilder graph, string x)
    {
        var cube = graph.Node("Mul", new[] { graph.Node("Mul", new[] { x, x }, "gelu.square"), x }, "gelu.cube");
        var inner = graph.Node("Add", new[] { x, graph.Node("Mul", new[] { cube, graph.Float("c", 0.044715f) }, "gelu.cubic") }, "gelu.inner");
        var tanh = graph.Node("Tanh", new[] { graph.Node("Mul", new[] { inner, graph.Float("sqrt_2_over_pi", MathF.Sqrt(2 / MathF.PI)) }, "gelu.scaled") }, "gelu.tanh");
        var onePlus = graph.Node("Add", new[] { tanh, graph.Float("one", 1) }, "gelu.one_plus");
        return graph.Node("Mul", new[] { graph.Node("Mul", new[] { x, onePlus }, "gelu.product"), graph.Float("half", 0.5f) }, "gelu");
    }
}
