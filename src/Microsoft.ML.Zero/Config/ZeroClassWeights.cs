using Microsoft.ML.Zero.Config;
namespace Microsoft.ML.Zero;

/// <summary>
/// How much each class counts in a classifier's loss (PyTorch cross_entropy's <c>weight</c>, scikit-learn's
/// <c>class_weight</c>): a row of class c adds weight[c] times its cross-entropy. Either one weight per class, in the
/// label's key order (the order <c>MapValueToKey</c> gave the values), or <see cref="Balanced"/>.
/// </summary>
public sealed class ZeroClassWeights
{
    private readonly double[]? _weights;

    /// <summary>One weight per class in the label's key order, each finite and above 0.</summary>
    public ZeroClassWeights(params double[] weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        _weights = (double[])weights.Clone();
    }

    private ZeroClassWeights()
    {
    }

    /// <summary>
    /// scikit-learn's <c>"balanced"</c>: class c weighs rows / (classes x rows of class c), counted over the whole training
    /// set (over every rank's input with <see cref="ZeroDataSharding.InputPerRank"/>). Every class weighs the same in total,
    /// and the weights average 1 over the training rows. Every class needs at least one training row.
    /// </summary>
    public static ZeroClassWeights Balanced { get; } = new();

    /// <summary>Whether the weights come from the training set's class counts.</summary>
    public bool IsBalanced => _weights is null;

    /// <summary>The weights given, in the label's key order; empty for <see cref="Balanced"/>.</summary>
    public IReadOnlyList<double> Weights => _weights ?? Array.Empty<double>();

    /// <summary>"balanced", or the weights as given.</summary>
    public override string ToString() =>
        IsBalanced ? "balanced" : "[" + string.Join(", ", Weights.Select(w => w.ToString("R", System.Globalization.CultureInfo.InvariantCulture))) + "]";

    internal void Validate(string option)
    {
        for (int i = 0; i < Weights.Count; i++)
            OptionCheck.Require(double.IsFinite(Weights[i]) && Weights[i] > 0, $"{option}[{i}]", Weights[i], "a finite weight above 0");
    }

    /// <summary>Throws unless there is one weight per class (balanced weights always fit).</summary>
    internal void RequireOnePerClass(string option, IReadOnlyList<string> classes)
    {
        if (!IsBalanced && Weights.Count != classes.Count)
            throw new ArgumentOutOfRangeException(option, Weights.Count,
                $"{option} has {Weights.Count} weight(s) but the label has {classes.Count} classes ({string.Join(", ", classes)}, in key order); give one weight per class.");
    }
}
