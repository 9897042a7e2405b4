using TorchSharp;
using TorchSharp.Modules;

namespace Microsoft.ML.Zero.Training;

/// <summary>The optimizer and its hyper-parameters; builds a TorchSharp optimizer over given parameters.</summary>
internal sealed record OptimizerSettings(
    ZeroOptimizer Kind, double LearningRate, double Beta1, double Beta2, double Epsilon, double WeightDecay, double Momentum)
{
    /// <summary>SGD dampening.</summary>
    public double Dampening { get; init; }

    /// <summary>SGD with Nesterov momentum.</summary>
    public bool Nesterov { get; init; }

    /// <summary>Parameters (by state-dict name) that get no weight decay, or null to decay all.</summary>
    public Func<string, bool>? ExcludeFromWeightDecay { get; init; }

    /// <summary>Whether the parameter of this state-dict name gets weight decay.</summary>
    public bool Decays(string parameterName) => ExcludeFromWeightDecay?.Invoke(parameterName) != true;

    public torch.optim.Optimizer Create(IReadOnlyList<(string Name, Parameter Parameter)> parameters)
    {
        var decayed = parameters.Where(p => Decays(p.Name)).Select(p => p.Parameter).ToList();
        var undecayed = parameters.Where(p => !Decays(p.Name)).Select(p => p.Parameter).ToList();
        return Kind switch
        {
            ZeroOptimizer.AdamW => torch.optim.AdamW(new[]
            {
                new AdamW.ParamGroup(decayed, LearningRate, Beta1, Beta2, Epsilon, WeightDecay),
                new AdamW.ParamGroup(undecayed, LearningRate, Beta1, Beta2, Epsilon, 0),
            }.Where(g => g.Parameters.Any()), LearningRate, Beta1, Beta2, Epsilon, WeightDecay),
            ZeroOptimizer.Adam => torch.optim.Adam(new[]
            {
                new Adam.ParamGroup(decayed, LearningRate, Beta1, Beta2, Epsilon, WeightDecay),
                new Adam.ParamGroup(undecayed, LearningRate, Beta1, Beta2, Epsilon, 0),
            }.Where(g => g.Parameters.Any()), LearningRate, Beta1, Beta2, Epsilon, WeightDecay),
            ZeroOptimizer.Sgd => torch.optim.SGD(new[]
            {
                new SGD.ParamGroup(decayed, LearningRate, Momentum, Dampening, WeightDecay, Nesterov),
                new SGD.ParamGroup(undecayed, LearningRate, Momentum, Dampening, 0, Nesterov),
            }.Where(g => g.Parameters.Any()), LearningRate, Momentum, Dampening, WeightDecay, Nesterov),
            _ => throw new ArgumentOutOfRangeException(nameof(Kind), Kind, "Unknown optimizer."),
        };
    }

    /// <summary>
    /// Sets a group's momentum as DeepSpeed's OneCycle does: Adam-type betas become (momentum, 0.99); SGD, which has no
    /// betas, keeps its momentum.
    /// </summary>
    public static void SetMomentum(torch.optim.ILearningRateController group, double momentum)
    {
        switch ((group as ParamGroup)?.Options)
        {
            case AdamW.Options adamW: (adamW.beta1, adamW.beta2) = (momentum, 0.99); break;
            case Adam.Options adam: (adam.beta1, adam.beta2) = (momentum, 0.99); break;
        }
    }
}
