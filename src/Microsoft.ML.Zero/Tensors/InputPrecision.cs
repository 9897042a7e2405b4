using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tensors;

/// <summary>In bf16/fp16 training a module holds low-precision weights: floating inputs are cast to match them.</summary>
internal static class InputPrecision
{
    public static Tensor Match(nn.Module module, Tensor input)
    {
        var weight = module.parameters().FirstOrDefault();
        return weight is not null && input.is_floating_point() && weight.is_floating_point() && input.dtype != weight.dtype ? input.to(weight.dtype) : input;
    }
}
