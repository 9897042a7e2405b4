using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Training;

/// <summary>
/// Identity in the forward pass; in the backward pass it calls back once the gradient reaches the input of the layer it
/// wraps, which happens after that layer's weight gradients have been accumulated. TorchSharp has no per-tensor
/// gradient hooks, so this is how the engine learns that a bucket of gradients is complete.
/// </summary>
internal sealed class GradientReadySignal : autograd.SingleTensorFunction<GradientReadySignal>
{
    private const string CallbackKey = "ready";

    public override string Name => nameof(GradientReadySignal);

    /// <summary>Wraps <paramref name="input"/> so that <paramref name="ready"/> runs when its gradient is computed.</summary>
    public static Tensor Wrap(Tensor input, Action ready) => apply(input, ready);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        ctx.save_data(CallbackKey, vars[1]);
        return ((Tensor)vars[0]).alias();
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        ((Action)ctx.get_data(CallbackKey))();
        return new List<Tensor> { grad_output, null! }; // no gradient for the callback argument
    }
}
