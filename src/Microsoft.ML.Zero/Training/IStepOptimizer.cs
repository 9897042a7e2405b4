using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Training;

/// <summary>
/// The optimizer step over the engine's fp32 weights (the master weights in mixed precision): the built-in
/// <see cref="FlatAdamW"/>, or a TorchSharp optimizer (<see cref="TorchSharpOptimizer"/>).
/// </summary>
internal interface IStepOptimizer : IDisposable
{
    /// <summary>The first parameter group's own learning rate: the base its schedule scales.</summary>
    double BaseLearningRate { get; }

    /// <summary>The checkpoint file its state is saved in.</summary>
    string StateFileName { get; }

    /// <summary>The bytes of its state that the engine can count (a TorchSharp optimizer's are not counted).</summary>
    long StateBytes { get; }

    /// <summary>Sets each group's learning rate from its base rate, and OneCycle's momentum, for the step about to be taken.</summary>
    void Schedule(Func<double, double> rateFromBase, double? momentum);

    /// <summary>
    /// Takes one step with the summed gradients multiplied by <paramref name="gradientScale"/>, and leaves the new
    /// weights in the module (its 16-bit copy in mixed precision).
    /// </summary>
    void Step(double gradientScale);

    void Save(string path);

    void Load(string path);

    /// <summary>
    /// The built-in AdamW over the flat weights unless <paramref name="settings"/> name another optimizer or a factory
    /// for one; <paramref name="gradients"/> is the buffer the step's summed gradients land in.
    /// </summary>
    static IStepOptimizer Create(EngineSettings settings, FlatParameters parameters, Tensor gradients)
    {
        var optimizer = settings.Optimizer;
        if (settings.OptimizerFactory is null && optimizer.Kind == ZeroOptimizer.AdamW)
        {
            var decayed = new List<(long Start, long Length)>();
            long offset = 0;
            foreach (var (name, parameter) in parameters.Names.Zip(parameters.Optimized))
            {
                if (optimizer.Decays(name))
                    decayed.Add((offset, parameter.numel()));
                offset += parameter.numel();
            }
            return new FlatAdamW(parameters.Weights, gradients, decayed, optimizer, parameters.ModelWeights);
        }
        var named = parameters.Names.Zip(parameters.Optimized, (name, parameter) => (name, parameter)).ToList();
        return settings.OptimizerFactory is { } factory
            ? TorchSharpOptimizer.OwnRates(factory(parameters.Optimized), parameters, gradients)
            : new TorchSharpOptimizer(optimizer.Create(named), optimizer.LearningRate, parameters, gradients);
    }
}
