using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Training;

/// <summary>A TorchSharp optimizer over the engine's fp32 parameters, stepped with the step's summed gradients.</summary>
internal sealed class TorchSharpOptimizer : IStepOptimizer
{
    private readonly optim.Optimizer _optimizer;
    private readonly double[] _baseRates;
    private readonly FlatParameters _parameters;
    private readonly Tensor _gradients;

    /// <summary>An optimizer whose groups all start from <paramref name="learningRate"/> (the built-in ones).</summary>
    public TorchSharpOptimizer(optim.Optimizer optimizer, double learningRate, FlatParameters parameters, Tensor gradients)
        : this(optimizer, optimizer.ParamGroups.Select(_ => learningRate).ToArray(), parameters, gradients)
    {
    }

    private TorchSharpOptimizer(optim.Optimizer optimizer, double[] baseRates, FlatParameters parameters, Tensor gradients)
    {
        _optimizer = optimizer;
        _baseRates = baseRates;
        _parameters = parameters;
        _gradients = gradients;
    }

    /// <summary>A caller's optimizer: each group's own rate is the base its schedule scales.</summary>
    public static TorchSharpOptimizer OwnRates(optim.Optimizer optimizer, FlatParameters parameters, Tensor gradients) =>
        new(optimizer, optimizer.ParamGroups.Select(group => group.LearningRate).ToArray(), parameters, gradients);

    public double BaseLearningRate => _baseRates[0];

    public string StateFileName => CheckpointStore.OptimizerFileName;

    public long StateBytes => 0;

    public void Schedule(Func<double, double> rateFromBase, double? momentum)
    {
        int index = 0;
        foreach (var group in _optimizer.ParamGroups)
        {
            group.LearningRate = rateFromBase(_baseRates[index++]);
            if (momentum is { } m)
                OptimizerSettings.SetMomentum(group, m);
        }
    }

    public void Step(double gradientScale)
    {
        using (no_grad())
        {
            // fp32 gradients are the parameters' own (ScaledGradients has scaled them in place already); 16-bit ones are
            // widened for the length of the step.
            if (_gradients.dtype != ScalarType.Float32)
            {
                StepWithWidenedGradients(gradientScale);
            }
            else
            {
                if (gradientScale != 1)
                    _gradients.mul_(gradientScale);
                _optimizer.step();
            }
        }
        _parameters.CopyToModel();
    }

    private void StepWithWidenedGradients(double gradientScale)
    {
        using var scope = NewDisposeScope();
        var widened = _gradients.to(ScalarType.Float32).mul_(gradientScale);
        FlatParameters.AttachGradients(_parameters.Optimized, widened);
        try
        {
            _optimizer.step();
        }
        finally
        {
            foreach (var parameter in _parameters.Optimized)
                parameter.grad = null;
        }
    }

    public void Save(string path) => ((OptimizerHelper)_optimizer).save_state_dict(path);

    public void Load(string path) => ((OptimizerHelper)_optimizer).load_state_dict(path);

    public void Dispose() => _optimizer.Dispose();
}
