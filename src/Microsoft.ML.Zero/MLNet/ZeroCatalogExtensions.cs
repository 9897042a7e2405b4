using Microsoft.ML.Zero;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML;

/// <summary>Adds <c>mlContext.Zero()</c>, and <c>mlContext.Model.SaveAtomically</c>.</summary>
public static class ZeroCatalogExtensions
{
    /// <summary>Microsoft.ML.Zero's distributed TorchSharp trainers.</summary>
    public static ZeroCatalog Zero(this MLContext mlContext) => new(mlContext);

    /// <summary>
    /// Saves <paramref name="model"/> as <c>mlContext.Model.Save</c> does, but never leaves a partial zip at
    /// <paramref name="filePath"/>: it writes a temp file in the same folder, flushes it to disk and renames it over the
    /// file. A save that fails or is killed leaves the previous file as it was, and no temp file when it fails.
    /// </summary>
    /// <param name="catalog"><c>mlContext.Model</c>.</param>
    /// <param name="model">The trained model.</param>
    /// <param name="inputSchema">The schema of the data the model takes, as for <c>Save</c>.</param>
    /// <param name="filePath">The zip to write; its folder must exist.</param>
    public static void SaveAtomically(this ModelOperationsCatalog catalog, ITransformer model, DataViewSchema inputSchema, string filePath)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentException.ThrowIfNullOrWhiteSpace(filePath);
        DurableFiles.Replace(filePath, stream => catalog.Save(model, inputSchema, stream));
    }
}
