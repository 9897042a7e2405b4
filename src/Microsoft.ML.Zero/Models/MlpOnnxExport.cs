using Onnx;
using Microsoft.ML.Zero.Config;

namespace Microsoft.ML.Zero.Models;

/// <summary>
/// An <see cref="MlpClassifier"/> as an ONNX graph: input <c>features</c> (fp32 [batch, features]), outputs <c>logits</c>
/// and <c>probabilities</c> (fp32 [batch, classes]). Dropout is left out, as in scoring.
/// </summary>
internal static class MlpOnnxExport
{
    public const string FeaturesInput = "features";

    public static byte[] Build(MlpClassifier model)
    {
        var shape = model.Shape;
        var weights = model.state_dict();
        var graph = new OnnxGraphBuilder("mlp_classifier");
        string hidden = graph.Input(FeaturesInput, TensorProto.Types.DataType.Float, OnnxGraphBuilder.BatchDimension, shape.InputSize);
        // The Sequential's children per hidden layer: Linear, activation, and dropout when there is any.
        int modulesPerLayer = shape.Dropout > 0 ? 3 : 2;
        for (int layer = 0; layer <= shape.HiddenSizes.Length; layer++)
        {
            string prefix = $"layers.{layer * modulesPerLayer}";
            hidden = graph.Node("Gemm", new[] { hidden, graph.Weight($"{prefix}.weight", weights[$"{prefix}.weight"]), graph.Weight($"{prefix}.bias", weights[$"{prefix}.bias"]) },
                $"{prefix}.output", OnnxGraphBuilder.Int("transB", 1));
            if (layer < shape.HiddenSizes.Length)
                hidden = Activation(graph, shape.Activation, hidden);
        }
        graph.Output(OnnxOutputs.Logits, hidden, TensorProto.Types.DataType.Float, OnnxGraphBuilder.BatchDimension, shape.ClassCount);
        graph.Output(OnnxOutputs.Probabilities, graph.Node("Softmax", new[] { hidden }, "softmax", OnnxGraphBuilder.Int("axis", 1)),
            TensorProto.Types.DataType.Float, OnnxGraphBuilder.BatchDimension, shape.ClassCount);
        return graph.ToModel($"Microsoft.ML.Zero MLP classifier: {shape.InputSize} features, hidden layers [{string.Join(", ", shape.HiddenSizes)}], {shape.ClassCount} classes.");
    }

    private static string Activation(OnnxGraphBuilder graph, MlpActivation activation, string input) => activation switch
    {
        MlpActivation.Relu => graph.Node("Relu", new[] { input }, "relu"),
        MlpActivation.Tanh => graph.Node("Tanh", new[] { input }, "tanh"),
        MlpActivation.Gelu => OnnxActivations.GeluErf(graph, input),
        _ => throw new ArgumentOutOfRangeException(nameof(activation), activation, "Unknown MLP activation."),
    };
}
