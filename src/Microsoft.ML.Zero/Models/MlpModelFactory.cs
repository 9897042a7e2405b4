using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Models;

/// <summary>The built-in model of <see cref="ZeroTrainer"/>: an MLP of the options' shape, with cross-entropy and softmax.</summary>
internal sealed class MlpModelFactory(MlpShape shape) : ZeroModelFactory
{
    public MlpShape Shape { get; } = shape;

    /// <summary>An MLP whose dropout draws from <paramref name="dropoutGenerator"/> (each rank's own stream).</summary>
    public MlpClassifier Create(Generator dropoutGenerator) => new(Shape, dropoutGenerator);

    public override nn.Module<Tensor, Tensor> CreateModel(int featureCount, int classCount) => Create(new Generator(0));
}
