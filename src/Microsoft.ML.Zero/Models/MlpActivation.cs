namespace Microsoft.ML.Zero;

/// <summary>The non-linearity between the hidden layers of the MLP.</summary>
public enum MlpActivation
{
    /// <summary>max(0, x).</summary>
    Relu,

    /// <summary>Gaussian error linear unit (erf form).</summary>
    Gelu,

    /// <summary>Hyperbolic tangent.</summary>
    Tanh,
}
