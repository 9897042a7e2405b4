namespace Microsoft.ML.Zero;

/// <summary>The optimizer that updates the weights (DeepSpeed's <c>optimizer.type</c>).</summary>
public enum ZeroOptimizer
{
    /// <summary>Adam with decoupled weight decay (<c>"AdamW"</c>, and <c>"Adam"</c> with DeepSpeed's default <c>adam_w_mode: true</c>).</summary>
    AdamW,

    /// <summary>Stochastic gradient descent, with optional momentum and Nesterov momentum (<c>"SGD"</c>).</summary>
    Sgd,

    /// <summary>Adam with L2 weight decay added to the gradient (<c>"Adam"</c> with <c>adam_w_mode: false</c>).</summary>
    Adam,
}
