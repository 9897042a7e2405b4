using System.Globalization;
using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// Evaluation every N steps, early stopping and LoadBestModelAtEnd: training stops once the validation log-loss has not
/// improved for the patience, and the model returned holds the best evaluation's weights, on 1 and on 2 ranks.
/// </summary>
[TestClass]
public sealed class EarlyStoppingTests
{
    private const int Patience = 3, EverySteps = 2, MaxEpoch = 40;

    // A small training split and a large validation split: with a high rate the MLP soon overfits, and the validation
    // log-loss turns up after a minimum.
    private static (IDataView Train, IDataView Validation) Split(MLContext mlContext)
    {
        var split = mlContext.Data.TrainTestSplit(IrisFixtures.Prepared(mlContext), testFraction: 0.7, seed: 3);
        return (split.TrainSet, split.TestSet);
    }

    private static ZeroTrainerOptions Options(int worldSize, IDataView validation) => new()
    {
        // The same global batch of 16 on 1 and on 2 ranks.
        WorldSize = worldSize, BatchSize = 16 / worldSize, MaxEpoch = MaxEpoch, Seed = 5, LearningRate = 0.05, HiddenLayerSizes = new[] { 64 },
        ValidationSet = validation, EvaluationStrategy = ZeroEvaluationStrategy.Steps, EvaluationSteps = EverySteps,
        MetricForBestModel = ZeroMetric.LogLoss, EarlyStoppingPatience = Patience, LoadBestModelAtEnd = true,
    };

    private sealed record Evaluation(long Step, double Accuracy, double MacroF1, double LogLoss);

    private static List<Evaluation> Evaluations(IEnumerable<string> lines) => lines
        .Select(line => Regex.Match(line, @"^Validation after step (\d+) .*: accuracy ([\d.]+), macro F1 ([\d.]+), log-loss (\d+\.\d+)"))
        .Where(match => match.Success)
        .Select(match => new Evaluation(long.Parse(match.Groups[1].Value), Parse(match.Groups[2].Value), Parse(match.Groups[3].Value), Parse(match.Groups[4].Value)))
        .ToList();

    private static double Parse(string value) => double.Parse(value, CultureInfo.InvariantCulture);

    private static (List<Evaluation> Evaluations, List<string> Lines, double FinalLogLoss, float[] Weights) Fit(int worldSize)
    {
        var mlContext = new MLContext(seed: 0);
        var lines = TrainerLog.Capture(mlContext);
        var (train, validation) = Split(mlContext);
        using var model = mlContext.Zero().Trainer(Options(worldSize, validation)).Fit(train);
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(validation));
        var replicas = mlContext.Zero().Trainer(Options(worldSize, validation)).TrainReplicas(train, out _);
        var weights = IrisFixtures.Weights(replicas[0]);
        foreach (var replica in replicas)
            replica.Dispose();
        return (Evaluations(lines), lines, metrics.LogLoss, weights);
    }

    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    public void TrainingStopsAfterThePatienceAndReturnsTheBestEvaluationsWeights(int worldSize)
    {
        var (evaluations, lines, finalLogLoss, _) = Fit(worldSize);
        var best = evaluations.MinBy(e => e.LogLoss)!;
        var last = evaluations[^1];
        string log = string.Join("\n", lines);

        StringAssert.Contains(log, $"Early stopping after step {last.Step}", "training did not stop early");
        int stepsPerEpoch = int.Parse(Regex.Match(log, @"(\d+) optimizer steps per epoch").Groups[1].Value);
        Assert.IsTrue(last.Step < MaxEpoch * stepsPerEpoch, $"stopped at step {last.Step}, the end of the run");
        Assert.AreEqual(best.Step + Patience * EverySteps, last.Step, $"the run stops {Patience} evaluations after the best one (step {best.Step})");
        Assert.IsTrue(evaluations.Count > Patience + 1, "the log-loss never improved after the first evaluation: the test shows nothing");
        Assert.IsTrue(last.LogLoss > best.LogLoss + 1e-3, "the last evaluation is as good as the best: restoring it would show nothing");

        Assert.AreEqual(best.LogLoss, finalLogLoss, 1e-4, "the returned model is not the best evaluation's");
        StringAssert.Contains(log, $"Loaded the best model, from step {best.Step}");
    }

    [TestMethod]
    public void OneAndTwoRanksEvaluateAndStopAlike()
    {
        var one = Fit(1);
        var two = Fit(2);
        CollectionAssert.AreEqual(one.Evaluations.Select(e => e.Step).ToArray(), two.Evaluations.Select(e => e.Step).ToArray());
        for (int i = 0; i < one.Evaluations.Count; i++)
            Assert.AreEqual(one.Evaluations[i].LogLoss, two.Evaluations[i].LogLoss, 1e-4, $"evaluation {i}");
        for (int i = 0; i < one.Weights.Length; i++)
            Assert.AreEqual(one.Weights[i], two.Weights[i], 1e-4, $"weight {i}");
    }

    [TestMethod]
    public void ARunCancelledAfterItsBestEvaluationResumesToTheSameStopAndBestWeights()
    {
        float[] Train(MLContext mlContext, string? checkpoints)
        {
            var (train, validation) = Split(mlContext);
            var options = Options(2, validation);
            options.ModelFactory = new CancellationTests.CancellingMlp();
            options.HiddenLayerSizes = new ZeroTrainerOptions().HiddenLayerSizes;
            (options.CheckpointDirectory, options.CheckpointEverySteps) = (checkpoints, checkpoints is null ? 0 : 3);
            var replicas = mlContext.Zero().Trainer(options).TrainReplicas(train, out _);
            var weights = IrisFixtures.Weights(replicas[0]);
            foreach (var replica in replicas)
                replica.Dispose();
            return weights;
        }

        CancellationTests.CancellingMlp.Reset(null, int.MaxValue);
        var uninterruptedContext = new MLContext(seed: 0);
        var uninterruptedLog = TrainerLog.Capture(uninterruptedContext);
        float[] uninterrupted = Train(uninterruptedContext, null);
        var evaluations = Evaluations(uninterruptedLog);
        long best = evaluations.MinBy(e => e.LogLoss)!.Step;
        StringAssert.Contains(string.Join("\n", uninterruptedLog), "Early stopping after step");

        using var folder = new TempFolder("zero-early-stop-");
        var cancelled = new MLContext(seed: 0);
        // 2 ranks compute a loss each per step: cancel one step after the best evaluation, with its weights kept.
        CancellationTests.CancellingMlp.Reset(cancelled, 2 * (int)best + 2);
        Assert.ThrowsExactly<OperationCanceledException>(() => Train(cancelled, folder.Path));
        CancellationTests.CancellingMlp.Reset(null, int.MaxValue);
        var resumedContext = new MLContext(seed: 0);
        var resumedLog = TrainerLog.Capture(resumedContext);
        float[] resumed = Train(resumedContext, folder.Path);

        StringAssert.Contains(string.Join("\n", resumedLog), "Resuming from");
        StringAssert.Contains(string.Join("\n", resumedLog), $"Loaded the best model, from step {best}");
        CollectionAssert.AreEqual(uninterrupted, resumed, "the resumed run did not end with the uninterrupted run's best weights");
    }
}
