using Microsoft.ML.Zero.Config;
namespace Microsoft.ML.Zero;

/// <summary>
/// The optimizer: DeepSpeed's <c>optimizer</c> block (<c>type</c> and <c>params</c>). Unset values (null, or
/// <c>"auto"</c> in a ds_config) come from the trainer's own options.
/// </summary>
public sealed class ZeroOptimizerOptions
{
    /// <summary>The optimizer [<c>optimizer.type</c>].</summary>
    public ZeroOptimizer? Type;

    /// <summary>The base learning rate; a schedule scales it [<c>optimizer.params.lr</c>].</summary>
    public double? LearningRate;

    /// <summary>Adam's first-moment decay [<c>optimizer.params.betas[0]</c>].</summary>
    public double? Beta1;

    /// <summary>Adam's second-moment decay [<c>optimizer.params.betas[1]</c>].</summary>
    public double? Beta2;

    /// <summary>Adam's denominator term [<c>optimizer.params.eps</c>].</summary>
    public double? Epsilon;

    /// <summary>Weight decay [<c>optimizer.params.weight_decay</c>].</summary>
    public double? WeightDecay;

    /// <summary>SGD momentum [<c>optimizer.params.momentum</c>].</summary>
    public double? Momentum;

    /// <summary>SGD dampening [<c>optimizer.params.dampening</c>].</summary>
    public double Dampening;

    /// <summary>Nesterov momentum for SGD [<c>optimizer.params.nesterov</c>].</summary>
    public bool Nesterov;

    internal void Validate(string prefix)
    {
        OptionCheck.Require(Type is null || Enum.IsDefined(Type.Value), prefix + nameof(Type), Type, string.Join(" or ", Enum.GetNames<ZeroOptimizer>()));
        OptionCheck.Require(LearningRate is null || LearningRate >= 0 && double.IsFinite(LearningRate.Value), prefix + nameof(LearningRate), LearningRate, "0 or a finite positive number");
        OptionCheck.Require(Beta1 is null or (>= 0 and < 1), prefix + nameof(Beta1), Beta1, "in [0, 1)");
        OptionCheck.Require(Beta2 is null or (>= 0 and < 1), prefix + nameof(Beta2), Beta2, "in [0, 1)");
        // Infinity passes "above 0" but turns every weight into NaN at the first step.
        OptionCheck.Require(Epsilon is null or (> 0 and < double.PositiveInfinity), prefix + nameof(Epsilon), Epsilon, "a finite number above 0");
        OptionCheck.Require(WeightDecay is null or (>= 0 and < double.PositiveInfinity), prefix + nameof(WeightDecay), WeightDecay, "a finite number of 0 or more");
        OptionCheck.Require(Momentum is null or (>= 0 and < double.PositiveInfinity), prefix + nameof(Momentum), Momentum, "a finite number of 0 or more");
        OptionCheck.Require(Dampening is >= 0 and < double.PositiveInfinity, prefix + nameof(Dampening), Dampening, "a finite number of 0 or more");
    }
}
