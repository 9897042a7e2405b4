using TorchSharp;
using TorchSharp.Modules;

namespace Microsoft.ML.Zero.Training;

/// <summary>The optimizer and its hyper-parameters; builds a TorchSharp optimizer over given parameters.</summary>
internal sealed record OptimizerSettings(
    ZeroOptimizer Kind, double LearningRate, double Beta1, double Beta2, double Epsilon, double WeightDecay, double Momentum)
{
    public torch.optim.Optimizer Create(IEnumerable<Parameter> parameters) => Kind switch
    {
        ZeroOptimizer.AdamW => torch.optim.AdamW(parameters, LearningRate, Beta1, Beta2, Epsilon, WeightDecay),
        ZeroOptimizer.Sgd => torch.optim.SGD(parameters, LearningRate, Momentum, weight_decay: WeightDecay),
        _ => throw new ArgumentOutOfRangeException(nameof(Kind), Kind, "Unknown optimizer."),
    };
}
