using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Loop;

/// <summary>
/// The summed squared error of a one-output head against the labels, in fp32: Hugging Face's regression loss for a
/// BertForSequenceClassification with one label (MSELoss), summed as every loss here is (the engine divides a step's
/// sum by its rows).
/// </summary>
internal static class RegressionLoss
{
    public static Tensor SquaredErrorSum(Tensor outputs, float[] labels)
    {
        using var targets = tensor(labels);
        return nn.functional.mse_loss(outputs.to(ScalarType.Float32).select(1, 0), targets, nn.Reduction.Sum);
    }
}
