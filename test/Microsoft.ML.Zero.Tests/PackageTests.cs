using System.Globalization;
using System.IO.Compression;
using System.Xml.Linq;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// `dotnet pack` makes the Microsoft.ML.Zero package, and two fresh console apps outside this repository, which know
/// the library only as that package, train and save a model (one app) and load it and score (the other). The apps
/// only run here because the package's build logic makes TorchSharp's native library loadable on this host.
/// </summary>
[TestClass]
public sealed class PackageTests
{
    private static readonly TimeSpan ChildTimeout = TimeSpan.FromMinutes(10);

    [TestMethod]
    [TestCategory("package")]
    public void PackedLibraryTrainsSavesAndLoadsInFreshAppsThatReferenceOnlyThePackage()
    {
        string repository = RepositoryRoot();
        // A version no earlier run can have left in the NuGet cache.
        string version = $"0.1.0-test.{DateTime.UtcNow.Ticks}";
        using var folder = new TempFolder("zero-package-");
        try
        {
            string feed = folder.Combine("feed");
            string build = folder.Combine("build");
            // Built outside the source tree, so the repository's own outputs keep their version.
            Dotnet(repository, "pack", Path.Combine(repository, "src", "Microsoft.ML.Zero"), "-c", "Release", "-o", feed, "--no-restore",
                "--disable-build-servers", $"-p:Version={version}", $"-p:OutputPath={build}/bin/", $"-p:IntermediateOutputPath={build}/obj/",
                $"-p:NuspecOutputPath={build}/obj/");
            AssertPackageContents(Path.Combine(feed, $"Microsoft.ML.Zero.{version}.nupkg"), version);

            string apps = folder.Combine("apps");
            CopyDirectory(Path.Combine(AppContext.BaseDirectory, "PackageApps"), apps);
            // Nothing from a parent folder applies to the apps; they restore from the local feed and this repository's sources.
            foreach (var file in new[] { "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props" })
                File.WriteAllText(Path.Combine(apps, file), "<Project />");
            var config = XDocument.Load(Path.Combine(repository, "nuget.config"));
            config.Root!.Element("packageSources")!.Add(new XElement("add", new XAttribute("key", "local"), new XAttribute("value", feed)));
            config.Save(Path.Combine(apps, "nuget.config"));

            string iris = IrisFixtures.DataPath;
            string model = folder.Combine("model.zip");
            string trainScores = folder.Combine("train-scores.tsv");
            string loadedScores = folder.Combine("loaded-scores.tsv");
            string output = Dotnet(apps, "run", "--project", "Train", "-c", "Release", "--disable-build-servers",
                $"--property:ZeroVersion={version}", "--", iris, model, trainScores);
            string accuracyLine = output.Split('\n').Single(line => line.StartsWith("accuracy ", StringComparison.Ordinal));
            double accuracy = double.Parse(accuracyLine["accuracy ".Length..], CultureInfo.InvariantCulture);
            Assert.IsTrue(accuracy > 0.9, $"training accuracy {accuracy}");

            Dotnet(apps, "run", "--project", "Score", "-c", "Release", "--disable-build-servers",
                $"--property:ZeroVersion={version}", "--", iris, model, loadedScores);
            var expected = File.ReadAllLines(trainScores);
            Assert.AreEqual(150, expected.Length);
            CollectionAssert.AreEqual(expected, File.ReadAllLines(loadedScores), "the loaded model scores differently");
        }
        finally
        {
            string cached = Path.Combine(Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } packages
                ? packages : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"),
                "microsoft.ml.zero", version);
            if (Directory.Exists(cached))
                Directory.Delete(cached, recursive: true);
        }
    }

    private static void AssertPackageContents(string package, string version)
    {
        using var zip = ZipFile.OpenRead(package);
        var entries = zip.Entries.Select(e => e.FullName).ToList();
        CollectionAssert.IsSubsetOf(new[]
        {
            "README.md", "lib/net8.0/Microsoft.ML.Zero.dll", "lib/net8.0/Microsoft.ML.Zero.xml",
            "build/Microsoft.ML.Zero.targets", "buildTransitive/Microsoft.ML.Zero.targets",
        }, entries, string.Join("\n", entries));
        Assert.IsFalse(entries.Any(e => e.StartsWith("eng/", StringComparison.Ordinal) || e.Contains("Cecil", StringComparison.OrdinalIgnoreCase)
            || e.Contains("Publiciz", StringComparison.OrdinalIgnoreCase)), string.Join("\n", entries));

        XDocument nuspec;
        using (var stream = zip.GetEntry("Microsoft.ML.Zero.nuspec")!.Open())
            nuspec = XDocument.Load(stream);
        var ns = nuspec.Root!.Name.Namespace;
        var metadata = nuspec.Root.Element(ns + "metadata")!;
        Assert.AreEqual(version, metadata.Element(ns + "version")!.Value);
        Assert.AreEqual("README.md", metadata.Element(ns + "readme")!.Value);
        Assert.AreEqual("MIT", metadata.Element(ns + "license")!.Value);
        var dependencies = metadata.Descendants(ns + "dependency")
            .ToDictionary(d => d.Attribute("id")!.Value, d => d.Attribute("version")!.Value);
        CollectionAssert.AreEquivalent(new[] { "Microsoft.ML", "Microsoft.ML.Tokenizers", "TorchSharp-cpu", "TorchSharp.PyBridge", "Spectre.Console", "OnnxSharp", "Google.Protobuf" },
            dependencies.Keys.ToArray(), nuspec.ToString());
        Assert.AreEqual("[5.0.1]", dependencies["Microsoft.ML"], "Microsoft.ML stays pinned exactly");
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            if (File.Exists(Path.Combine(directory.FullName, "Microsoft.ML.Zero.sln")))
                return directory.FullName;
        throw new AssertFailedException($"no Microsoft.ML.Zero.sln above {AppContext.BaseDirectory}");
    }

    private static void CopyDirectory(string source, string destination)
    {
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(destination, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    // Runs the dotnet CLI; fails the test, with the command and everything it printed, if it fails or takes too long.
    private static string Dotnet(string workingDirectory, params string[] arguments) =>
        ChildProcess.Run(ChildProcess.DotnetHost, arguments, ChildTimeout, workingDirectory,
            [new("DOTNET_NOLOGO", "1"), new("DOTNET_CLI_TELEMETRY_OPTOUT", "1")]).AssertSucceeded().StandardOutput;
}
