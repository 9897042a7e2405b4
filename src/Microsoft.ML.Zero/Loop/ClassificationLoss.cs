using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Loop;

/// <summary>
/// The summed cross-entropy of a batch of class logits, with optional class weights and label smoothing, exactly as
/// PyTorch's <c>cross_entropy(logits, labels, weight, reduction="sum", label_smoothing)</c> defines it:
/// the sum over rows i of (1 - s) w[y_i] (-log p_i[y_i]) + (s / C) sum over classes c of w[c] (-log p_i[c]).
/// The engine divides a step's sum by the step's rows, so the loss it reports is a mean per row of the weighted
/// cross-entropy (not divided by the weights' sum, as PyTorch's "mean" would): balanced weights average 1 over the
/// training rows and keep the unweighted scale; other weights scale the loss, and with it the gradients, by their mean
/// over the rows.
/// </summary>
internal sealed class ClassificationLoss
{
    /// <summary>Plain cross-entropy: no weights, no smoothing.</summary>
    public static readonly ClassificationLoss CrossEntropy = new(null, 0);

    private readonly float[]? _classWeights;

    public ClassificationLoss(IReadOnlyList<double>? classWeights, double labelSmoothing)
    {
        _classWeights = classWeights?.Select(w => (float)w).ToArray();
        LabelSmoothing = labelSmoothing;
    }

    /// <summary>The weight of each class in key order, or null when every class weighs 1.</summary>
    public IReadOnlyList<float>? ClassWeights => _classWeights;

    /// <summary>The share of each row's target spread evenly over all classes (label_smoothing).</summary>
    public double LabelSmoothing { get; }

    /// <summary>The summed loss of <paramref name="logits"/> [rows, classes] against zero-based <paramref name="labels"/> [rows], in fp32.</summary>
    public Tensor Sum(Tensor logits, Tensor labels)
    {
        using var weights = _classWeights is null ? null : tensor(_classWeights);
        return nn.functional.cross_entropy(logits.to(ScalarType.Float32), labels, weights, reduction: nn.Reduction.Sum, label_smoothing: LabelSmoothing);
    }

    /// <summary>The summed loss of <paramref name="logits"/> against zero-based classes given as floats (<see cref="OutputLoss"/>).</summary>
    public Tensor Sum(Tensor logits, float[] classes)
    {
        using var labels = tensor(classes.Select(c => (long)c).ToArray());
        return Sum(logits, labels);
    }

    /// <summary>
    /// scikit-learn's balanced weights, rows / (classes x rows of the class), from the training set's rows per class in key
    /// order; <paramref name="classes"/> and <paramref name="option"/> name a class without rows.
    /// </summary>
    public static double[] BalancedWeights(long[] classCounts, IReadOnlyList<string> classes, string option)
    {
        int empty = Array.IndexOf(classCounts, 0L);
        if (empty >= 0)
            throw new InvalidOperationException($"{option} is balanced, but class '{classes[empty]}' (key {empty + 1}) has no training rows, " +
                "so its weight would be infinite. Give explicit weights (new ZeroClassWeights(...)), or train on data that holds every class.");
        double rows = classCounts.Sum();
        return classCounts.Select(count => rows / (classCounts.Length * (double)count)).ToArray();
    }
}
