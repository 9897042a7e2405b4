using Microsoft.ML.Zero;

namespace Microsoft.ML;

/// <summary>Adds <c>mlContext.Zero()</c>.</summary>
public static class ZeroCatalogExtensions
{
    /// <summary>Microsoft.ML.Zero's distributed TorchSharp trainers.</summary>
    public static ZeroCatalog Zero(this MLContext mlContext) => new(mlContext);
}
