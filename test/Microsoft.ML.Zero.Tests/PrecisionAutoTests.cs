using System.Text.RegularExpressions;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Distributed;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// Precision Auto: bf16 where the CPU computes it natively, fp32 elsewhere, with the reason logged; explicit 16-bit
/// formats on a CPU that emulates them train as asked, with a warning. ZERO_NATIVE_BF16 / ZERO_NATIVE_FP16 force each
/// branch on any machine.
/// </summary>
[TestClass]
public sealed class PrecisionAutoTests
{
    private const string Bf16Variable = "ZERO_NATIVE_BF16", Fp16Variable = "ZERO_NATIVE_FP16";

    private static ZeroTrainerOptions Options(ZeroPrecision precision) => new()
    {
        WorldSize = 2, BatchSize = 8, MaxEpoch = 2, Seed = 3, HiddenLayerSizes = new[] { 16 }, LearningRate = 0.01,
        DeepSpeed = new DeepSpeedOptions { Precision = precision },
    };

    // Trains the iris MLP with the variable set as given, returning rank 0's weights and the trainer's log.
    private static (float[] Weights, List<string> Log) Train(ZeroPrecision precision, string? bf16Variable = null, string? fp16Variable = null)
    {
        var mlContext = new MLContext(seed: 0);
        var log = TrainerLog.Capture(mlContext);
        Environment.SetEnvironmentVariable(Bf16Variable, bf16Variable);
        Environment.SetEnvironmentVariable(Fp16Variable, fp16Variable);
        try
        {
            var replicas = mlContext.Zero().Trainer(Options(precision)).TrainReplicas(IrisFixtures.Prepared(mlContext), out _);
            try
            {
                return (IrisFixtures.Weights(replicas[0]), log);
            }
            finally
            {
                foreach (var replica in replicas)
                    replica.Dispose();
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable(Bf16Variable, null);
            Environment.SetEnvironmentVariable(Fp16Variable, null);
        }
    }

    private static string Setup(List<string> log) => log.Single(line => line.Contains("accumulation step(s) = batch", StringComparison.Ordinal));

    [TestMethod]
    public void AutoWithoutNativeBf16TrainsExactlyAsFp32AndSaysWhy()
    {
        var (auto, log) = Train(ZeroPrecision.Auto, bf16Variable: "0");
        var (fp32, _) = Train(ZeroPrecision.Fp32);
        CollectionAssert.AreEqual(fp32, auto, "Auto without native bf16 did not train as fp32");
        CollectionAssert.Contains(log, "precision auto -> fp32: ZERO_NATIVE_BF16=0 marks this CPU as without native bf16.");
        StringAssert.Contains(Setup(log), ", Fp32, ");
    }

    [TestMethod]
    public void AutoWithNativeBf16TrainsExactlyAsBf16AndSaysWhy()
    {
        var (auto, log) = Train(ZeroPrecision.Auto, bf16Variable: "1");
        var (bf16, bf16Log) = Train(ZeroPrecision.Bf16, bf16Variable: "1");
        CollectionAssert.AreEqual(bf16, auto, "Auto with native bf16 did not train as bf16");
        CollectionAssert.Contains(log, "precision auto -> bf16: ZERO_NATIVE_BF16=1 marks this CPU as computing bf16 natively.");
        StringAssert.Contains(Setup(log), ", Bf16, ");
        Assert.IsFalse(bf16Log.Any(line => line.Contains("emulates", StringComparison.Ordinal)), "an explicit bf16 on a native CPU was warned about");
    }

    [TestMethod]
    public void AutoOnThisCpuFollowsTheMeasuredMatmulSpeedAndNamesTheCpuFeatures()
    {
        var (_, log) = Train(ZeroPrecision.Auto);
        string line = log.Single(l => l.StartsWith("precision auto -> ", StringComparison.Ordinal));
        Console.WriteLine(line);
        var match = Regex.Match(line, @"^precision auto -> (bf16|fp32): bf16 matmul ([\d.]+)x (as fast as|slower than) fp32 \(this CPU has (.+)\)\.$");
        Assert.IsTrue(match.Success, line);
        bool faster = match.Groups[3].Value == "as fast as" && double.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) >= 1;
        Assert.AreEqual(faster ? "bf16" : "fp32", match.Groups[1].Value, line);
        StringAssert.Contains(Setup(log), faster ? ", Bf16, " : ", Fp32, ");
        // The features named are the CPU's own, as /proc/cpuinfo lists them.
        if (File.Exists("/proc/cpuinfo"))
        {
            string flags = File.ReadAllText("/proc/cpuinfo");
            bool hasBf16 = Regex.IsMatch(flags, @"\bavx512_bf16\b") || Regex.IsMatch(flags, @"\bamx_bf16\b");
            Assert.AreEqual(!hasBf16, match.Groups[4].Value.StartsWith("neither", StringComparison.Ordinal), line);
        }
    }

    [TestMethod]
    public void ExplicitBf16AndFp16OnACpuThatEmulatesThemTrainAsAskedWithAWarning()
    {
        var (_, bf16Log) = Train(ZeroPrecision.Bf16, bf16Variable: "0");
        StringAssert.Contains(Setup(bf16Log), ", Bf16, ");
        CollectionAssert.Contains(bf16Log, "bf16 was asked for, but this CPU emulates it: ZERO_NATIVE_BF16=0 marks this CPU as without native bf16. " +
            "Training stays in bf16 as asked and will be slow; \"enabled\": \"auto\" (ZeroPrecision.Auto) would train in fp32 here.");

        var (_, fp16Log) = Train(ZeroPrecision.Fp16, bf16Variable: "1", fp16Variable: "0");
        StringAssert.Contains(Setup(fp16Log), ", Fp16, ");
        CollectionAssert.Contains(fp16Log, "fp16 was asked for, but this CPU emulates it: ZERO_NATIVE_FP16=0 marks this CPU as without native fp16. " +
            "Training stays in fp16 as asked and will be slow; \"enabled\": \"auto\" (ZeroPrecision.Auto) would train in bf16 here.");
    }

    [TestMethod]
    public void TheCatalogResolvesAPrecisionAsTheTrainersDo()
    {
        var zero = new MLContext(seed: 0).Zero();
        try
        {
            Environment.SetEnvironmentVariable(Bf16Variable, "0");
            Assert.AreEqual(ZeroPrecision.Fp32, zero.ResolvePrecision(ZeroPrecision.Auto));
            Assert.AreEqual(ZeroPrecision.Bf16, zero.ResolvePrecision(ZeroPrecision.Bf16), "an explicit bf16 stays bf16");
            Environment.SetEnvironmentVariable(Bf16Variable, "1");
            Assert.AreEqual(ZeroPrecision.Bf16, zero.ResolvePrecision(ZeroPrecision.Auto));
            Assert.AreEqual(ZeroPrecision.Fp32, zero.ResolvePrecision(ZeroPrecision.Fp32));
        }
        finally
        {
            Environment.SetEnvironmentVariable(Bf16Variable, null);
        }
    }

    [TestMethod]
    public void AnOverrideThatIsNeitherZeroNorOneIsAnErrorNamingTheVariable()
    {
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => Train(ZeroPrecision.Auto, bf16Variable: "yes"));
        StringAssert.Contains(error.Message, "ZERO_NATIVE_BF16 is 'yes'; expected 0 (no native bf16), 1 (native bf16) or unset (measure)");
    }

    [TestMethod]
    public void DeepSpeedAutoSwitchesReadAsDeepSpeedUsersMeanThem()
    {
        ZeroPrecision Read(string json) => DeepSpeedOptions.FromDeepSpeedConfig(json).Precision;
        Assert.AreEqual(ZeroPrecision.Auto, Read("""{ "bf16": { "enabled": "auto" } }"""));
        Assert.AreEqual(ZeroPrecision.Auto, Read("""{ "fp16": { "enabled": "auto" } }"""), "fp16 auto on the CPU is Auto");
        Assert.AreEqual(ZeroPrecision.Auto, Read("""{ "fp16": { "enabled": "auto" }, "bf16": { "enabled": "auto" } }"""));
        Assert.AreEqual(ZeroPrecision.Fp32, Read("""{ "fp16": { "enabled": "auto" }, "bf16": { "enabled": false } }"""), "bf16 switched off");
        Assert.AreEqual(ZeroPrecision.Fp16, Read("""{ "fp16": { "enabled": true }, "bf16": { "enabled": "auto" } }"""), "auto yields to a switched-on format");
        Assert.AreEqual(ZeroPrecision.Bf16, Read("""{ "fp16": { "enabled": "auto" }, "bf16": { "enabled": true } }"""));
        Assert.AreEqual(ZeroPrecision.Fp32, Read("""{ "bf16": { "enabled": false } }"""));
        var both = Assert.ThrowsExactly<InvalidDataException>(() => Read("""{ "fp16": { "enabled": true }, "bf16": { "enabled": true } }"""));
        StringAssert.Contains(both.Message, "only one of fp16 and bf16 can be enabled");
        // A bf16 accumulation type is valid under Auto, and dropped where Auto picks fp32.
        Assert.AreEqual(ZeroPrecision.Bf16, DeepSpeedOptions.FromDeepSpeedConfig("""{ "bf16": { "enabled": "auto" }, "data_types": { "grad_accum_dtype": "bf16" } }""").GradientAccumulationDataType);
    }

    [TestMethod]
    public void RanksThatResolvedDifferentPrecisionsFailNamingTheRanksBeforeTheFirstStep()
    {
        var error = Assert.ThrowsExactly<Distributed.ZeroRankFailedException>(() => ZeroEngine.Launch(2, rank =>
        {
            using var model = rank.CreateModel(seed: 1, () => nn.Linear(4, 2));
            using var engine = ZeroEngine.Initialize(model, new DeepSpeedOptions { Precision = rank.Rank == 0 ? ZeroPrecision.Fp32 : ZeroPrecision.Bf16 });
        }, TimeSpan.FromSeconds(30)));
        StringAssert.Contains(error.Message, "The ranks train in different precisions: rank 0 in Fp32, rank 1 in Bf16.");
        StringAssert.Contains(error.Message, "set the precision explicitly");
    }

    [TestMethod]
    public void TheEngineApiPrintsAutosChoiceOnRankZerosConsole()
    {
        var console = Console.Out;
        var captured = new StringWriter();
        Console.SetOut(captured);
        Environment.SetEnvironmentVariable(Bf16Variable, "0");
        try
        {
            ZeroEngine.Launch(2, rank =>
            {
                using var model = rank.CreateModel(seed: 1, () => nn.Linear(4, 2));
                using var engine = ZeroEngine.Initialize(model, DeepSpeedOptions.FromDeepSpeedConfig("""{ "bf16": { "enabled": "auto" } }"""));
                Assert.AreEqual(ScalarType.Float32, model.parameters().First().dtype, $"rank {rank.Rank}");
            });
        }
        finally
        {
            Console.SetOut(console);
            Environment.SetEnvironmentVariable(Bf16Variable, null);
        }
        var lines = captured.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.AreEqual(1, lines.Count(l => l == "Microsoft.ML.Zero: precision auto -> fp32: ZERO_NATIVE_BF16=0 marks this CPU as without native bf16."),
            captured.ToString());
    }
}
