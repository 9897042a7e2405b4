using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.Models;

/// <summary>A multi-layer perceptron from a feature vector to class logits.</summary>
internal sealed class MlpClassifier : nn.Module<Tensor, Tensor>
{
    private readonly Sequential layers;
    // Registered with the module, as every module field is: it stays so that the state dict's names stay the same.
    private readonly Linear _firstLayer;

    public MlpClassifier(MlpShape shape, Generator dropoutGenerator) : base(nameof(MlpClassifier))
    {
        Shape = shape;
        var modules = new List<(string, nn.Module<Tensor, Tensor>)>();
        int width = shape.InputSize;
        foreach (int hidden in shape.HiddenSizes)
        {
            modules.Add(($"{modules.Count}", nn.Linear(width, hidden)));
            modules.Add(($"{modules.Count}", Activation(shape.Activation)));
            if (shape.Dropout > 0)
                modules.Add(($"{modules.Count}", new RankDropout(shape.Dropout, dropoutGenerator)));
            width = hidden;
        }
        modules.Add(($"{modules.Count}", nn.Linear(width, shape.ClassCount)));
        layers = nn.Sequential(modules);
        _firstLayer = (Linear)modules[0].Item2;
        RegisterComponents();
    }

    public MlpShape Shape { get; }

    /// <summary>
    /// The elements of the state dict (what Module.save writes) of an MLP of <paramref name="shape"/>, known before one
    /// is built: a weight matrix and a bias per layer, and the first layer once more under _firstLayer.
    /// </summary>
    public static long StateElementCount(MlpShape shape)
    {
        long count = 0;
        int width = shape.InputSize;
        foreach (int size in shape.HiddenSizes.Append(shape.ClassCount))
        {
            count += (long)width * size + size;
            width = size;
        }
        int first = shape.HiddenSizes.Length > 0 ? shape.HiddenSizes[0] : shape.ClassCount;
        return count + (long)shape.InputSize * first + first;
    }

    // Features arrive in fp32; in bf16/fp16 training the layers hold low-precision weights.
    public override Tensor forward(Tensor features) => layers.call(InputPrecision.Match(this, features));

    private static nn.Module<Tensor, Tensor> Activation(MlpActivation activation) => activation switch
    {
        MlpActivation.Relu => nn.ReLU(),
        MlpActivation.Gelu => nn.GELU(),
        MlpActivation.Tanh => nn.Tanh(),
        _ => throw new ArgumentOutOfRangeException(nameof(activation), activation, "Unknown MLP activation."),
    };
}
