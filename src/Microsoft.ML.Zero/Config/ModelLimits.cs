namespace Microsoft.ML.Zero.Config;

/// <summary>
/// Upper limits on the sizes of a model, far above any real one. A size read from a file (a model zip, a config.json)
/// is checked against them before anything is built from it, so a crafted file cannot ask for terabytes or overflow
/// the arithmetic; the options and data that become those sizes at training are held to the same limits, so what
/// trains always loads.
/// </summary>
internal static class ModelLimits
{
    /// <summary>Features, hidden units, classes, positions, rows scored together.</summary>
    public const int MaxSize = 1 << 20;

    /// <summary>Hidden layers of an MLP, encoder layers of a BERT.</summary>
    public const int MaxLayers = 1024;
}
