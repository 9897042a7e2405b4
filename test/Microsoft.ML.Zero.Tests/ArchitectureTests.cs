using System.Text.RegularExpressions;
using ArchUnitNET.Domain;
using ArchUnitNET.Loader;
using static ArchUnitNET.Fluent.ArchRuleDefinition;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// The layers of docs/architecture.md, checked on the compiled library: each folder is a namespace, and a layer uses
/// only the layers it lists. Public types live in the root namespace (or Microsoft.ML for the catalog extension), so
/// each layer also names its public root types; every type of the library must belong to exactly one layer.
/// </summary>
[TestClass]
public sealed class ArchitectureTests
{
    private sealed record Layer(string Name, string[] Uses, params string[] PublicTypes)
    {
        // The layer's folder namespace (and those below it, such as Distributed.Mpi), or one of its public root types
        // with the types nested in it (closures and state machines included).
        public string Pattern =>
            $@"^(Microsoft\.ML\.Zero\.{Name}\.|({string.Join("|", PublicTypes.Select(FullName).DefaultIfEmpty("$^"))})($|[+/]))";

        // Public types are named within Microsoft.ML.Zero unless given in full (the catalog extension lives in Microsoft.ML).
        private static string FullName(string type) => Regex.Escape(type.Contains('.') ? type : "Microsoft.ML.Zero." + type);
    }

    // Bottom to top; a layer may use only those it names.
    private static readonly Layer[] Layers =
    {
        new("Config", Array.Empty<string>(),
            "DeepSpeedOptions", "ZeroOptions", "Fp16Options", "ZeroOptimizerOptions", "ZeroOptimizationOptions", "MonitorOptions", "ZeroPrecision", "ZeroOptimizer",
            "WarmupType", "LearningRateSchedule", "WarmupLR", "WarmupDecayLR", "WarmupCosineLR", "OneCycle", "ZeroSchedulerType", "ZeroClassWeights"),
        new("Tensors", Array.Empty<string>()),
        new("Distributed", new[] { "Tensors", "Config" }),
        new("Monitoring", new[] { "Config" }, "ZeroProgress", "ZeroMetric"),
        new("Data", new[] { "Tensors", "Config" }, "ZeroDataSharding"),
        new("Models", new[] { "Distributed", "Tensors", "Config" }, "ZeroModelFactory", "MlpActivation", "ZeroLongTextHandling"),
        new("Training", new[] { "Distributed", "Tensors", "Config" }, "ZeroStepResult"),
        new("Engine", new[] { "Training", "Models", "Monitoring", "Distributed", "Tensors", "Config" }, "ZeroEngine", "ZeroRank"),
        new("Loop", new[] { "Engine", "Training", "Models", "Data", "Monitoring", "Distributed", "Tensors", "Config" }, "ZeroEvaluationStrategy"),
        new("MLNet", new[] { "Loop", "Engine", "Training", "Models", "Data", "Monitoring", "Distributed", "Tensors", "Config" },
            "ZeroCatalog", "ZeroTrainer", "ZeroTrainerOptions", "ZeroTrainingOptions", "ZeroTextClassificationTrainer",
            "ZeroTextClassificationOptions", "ZeroTransformer", "Microsoft.ML.ZeroCatalogExtensions", "ZeroBertOptions", "ZeroSentenceSimilarityTrainer",
            "ZeroSentenceSimilarityOptions", "ZeroRegressionTransformer", "ZeroModelTransformer", "ZeroNamedEntityRecognitionTrainer", "ZeroNamedEntityRecognitionOptions",
            "ZeroNamedEntityRecognitionTransformer", "ZeroTokenClassificationMetrics", "ZeroTagMetrics"),
    };

    // ML.NET's own types (Microsoft.ML.Tokenizers is a separate library the models use).
    private const string MLNetTypes = @"^Microsoft\.ML\.(?!Zero\.|Tokenizers\.)";

    private static readonly Architecture Library = new ArchLoader().LoadAssemblies(typeof(ZeroEngine).Assembly).Build();

    private static IEnumerable<object[]> LayerNames => Layers.Select(layer => new object[] { layer.Name });

    [TestMethod]
    [DynamicData(nameof(LayerNames))]
    public void ALayerUsesOnlyTheLayersBelowItThatItNames(string name)
    {
        var layer = Layers.Single(l => l.Name == name);
        var forbidden = Layers.Where(other => other != layer && !layer.Uses.Contains(other.Name)).ToList();
        if (forbidden.Count == 0)
            return;
        var rule = Types().That().HaveFullNameMatching(layer.Pattern)
            .Should().NotDependOnAnyTypesThat().HaveFullNameMatching(string.Join("|", forbidden.Select(f => f.Pattern)));
        AssertHolds(rule.Evaluate(Library), $"{name} may use only {string.Join(", ", layer.Uses.DefaultIfEmpty("no other layer"))}");
    }

    [TestMethod]
    public void OnlyTheMLNetAndDataLayersUseMLNetTypes()
    {
        var others = Layers.Where(l => l.Name is not ("MLNet" or "Data")).Select(l => l.Pattern);
        var rule = Types().That().HaveFullNameMatching(string.Join("|", others))
            .Should().NotDependOnAnyTypesThat().HaveFullNameMatching(MLNetTypes);
        AssertHolds(rule.Evaluate(Library), "only MLNet/ and Data/ may touch ML.NET");
    }

    [TestMethod]
    public void EveryTypeOfTheLibraryBelongsToExactlyOneLayer()
    {
        var unplaced = new List<string>();
        foreach (var type in Library.Types.Where(t => t.FullName.StartsWith("Microsoft.ML.Zero", StringComparison.Ordinal)))
        {
            int layers = Layers.Count(layer => Regex.IsMatch(type.FullName, layer.Pattern));
            if (layers != 1)
                unplaced.Add($"{type.FullName} ({layers} layers)");
        }
        Assert.AreEqual(0, unplaced.Count, "Types outside the layers (put internal types in their folder's namespace, list public root types in Layers):\n" +
            string.Join("\n", unplaced));
    }

    private static void AssertHolds(IEnumerable<ArchUnitNET.Fluent.EvaluationResult> results, string rule)
    {
        var violations = results.Where(r => !r.Passed).Select(r => r.Description).ToList();
        Assert.AreEqual(0, violations.Count, $"{rule}; these types break it:\n{string.Join("\n", violations)}");
    }
}
