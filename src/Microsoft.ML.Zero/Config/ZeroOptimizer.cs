namespace Microsoft.ML.Zero;

/// <summary>The optimizer that updates the weights (DeepSpeed's <c>optimizer.type</c>).</summary>
public enum ZeroOptimizer
{
    /// <summary>Adam with decoupled weight decay.</summary>
    AdamW,

    /// <summary>Stochastic gradient descent, with optional momentum.</summary>
    Sgd,
}
