namespace Microsoft.ML.Zero.Config;

/// <summary>
/// The optimizer's hyper-parameters where nothing sets them: AdamW with PyTorch's betas and epsilon, for the trainers'
/// options and for an engine whose <see cref="DeepSpeedOptions"/> name no optimizer.
/// </summary>
internal static class OptimizerDefaults
{
    public const double LearningRate = 1e-3, Beta1 = 0.9, Beta2 = 0.999, Epsilon = 1e-8, WeightDecay = 0.01;
}
