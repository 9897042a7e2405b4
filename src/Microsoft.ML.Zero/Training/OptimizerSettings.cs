using TorchSharp;
using TorchSharp.Modules;

namespace Microsoft.ML.Zero.Training;

/// <summary>The optimizer and its hyper-parameters; builds a TorchSharp optimizer over given parameters.</summary>
internal sealed record OptimizerSettings(
    ZeroOptimizer Kind, double LearningRate, double Beta1, double Beta2, double Epsilon, double WeightDecay, double Momentum)
{
    /// <summary>Parameters (by state-dict name) that get no weight decay, or null to decay all.</summary>
    public Func<string, bool>? ExcludeFromWeightDecay { get; init; }

    public torch.optim.Optimizer Create(IReadOnlyList<(string Name, Parameter Parameter)> parameters)
    {
        var decayed = parameters.Where(p => ExcludeFromWeightDecay?.Invoke(p.Name) != true).Select(p => p.Parameter).ToList();
        var undecayed = parameters.Where(p => ExcludeFromWeightDecay?.Invoke(p.Name) == true).Select(p => p.Parameter).ToList();
        return Kind switch
        {
            ZeroOptimizer.AdamW => torch.optim.AdamW(new[]
            {
                new AdamW.ParamGroup(decayed, LearningRate, Beta1, Beta2, Epsilon, WeightDecay),
                new AdamW.ParamGroup(undecayed, LearningRate, Beta1, Beta2, Epsilon, 0),
            }.Where(g => g.Parameters.Any()), LearningRate, Beta1, Beta2, Epsilon, WeightDecay),
            ZeroOptimizer.Sgd => torch.optim.SGD(new[]
            {
                new SGD.ParamGroup(decayed, LearningRate, Momentum, weight_decay: WeightDecay),
                new SGD.ParamGroup(undecayed, LearningRate, Momentum, weight_decay: 0),
            }.Where(g => g.Parameters.Any()), LearningRate, Momentum, weight_decay: WeightDecay),
            _ => throw new ArgumentOutOfRangeException(nameof(Kind), Kind, "Unknown optimizer."),
        };
    }
}
