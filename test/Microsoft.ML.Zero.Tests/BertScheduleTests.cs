using System.Globalization;

namespace Microsoft.ML.Zero.Tests;

/// <summary>The text classifier's default schedule, warm-up then linear decay, step by step as csv_monitor records it.</summary>
[TestClass]
public sealed class BertScheduleTests
{
    // 24 sentences, 1 rank x batch 4, 2 epochs: 12 optimizer steps.
    private const int Steps = 12;

    private static double[] RatePerStep(ZeroSchedulerType? scheduler, List<string> log, MLContext mlContext)
    {
        using var folder = new TempFolder("zero-bert-schedule-");
        var options = new ZeroTextClassificationOptions
        {
            CheckpointPath = MiniLm.Directory(), Sentence1ColumnName = "Text", BatchSize = 4, MaxEpoch = 2, MaxSequenceLength = 32, Progress = ZeroProgress.None,
            DeepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Fp32, CsvMonitor = new MonitorOptions { Enabled = true, OutputPath = folder.Path, JobName = "run" } },
        };
        if (scheduler is { } type)
            options.LearningRateSchedulerType = type;
        var train = mlContext.Data.LoadFromEnumerable(SentimentData.All().Take(24));
        var model = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(mlContext.Zero().TextClassification(options)).Fit(train);
        (model as IDisposable)?.Dispose();
        return File.ReadAllLines(Path.Combine(folder.Path, "run", "Train_Samples_lr.csv")).Skip(1)
            .Select(line => double.Parse(line.Split(',')[1], CultureInfo.InvariantCulture)).ToArray();
    }

    [TestMethod]
    [TestCategory("bert")]
    public void TheTextClassifierWarmsUpOverSixPercentOfTheStepsThenDecaysLinearlyUnlessToldConstant()
    {
        var mlContext = new MLContext(seed: 0);
        var log = TrainerLog.Capture(mlContext);
        double rate = new ZeroTextClassificationOptions().LearningRate;

        // 6% of 12 steps is 0.72, rounded up to 1 warm-up step: step 1 at 0, step 2 at the peak, then down to rate / 11.
        var rates = RatePerStep(null, log, mlContext);
        var expected = Enumerable.Range(1, Steps).Select(k => k == 1 ? 0 : rate * (Steps - (k - 1)) / (Steps - 1)).ToArray();
        Assert.AreEqual(Steps, rates.Length);
        for (int k = 0; k < Steps; k++)
            Assert.AreEqual(expected[k], rates[k], 1e-18, $"step {k + 1}");
        StringAssert.Contains(string.Join("\n", log), "AdamW lr 5E-05 with linear decay after 6% warm-up");
        StringAssert.Contains(string.Join("\n", log), "learning rate with linear decay after 6% warm-up (1 of 12 steps)");

        var constant = RatePerStep(ZeroSchedulerType.Constant, log, mlContext);
        Assert.AreEqual(Steps, constant.Length);
        Assert.IsTrue(constant.All(r => r == rate), string.Join(", ", constant));
    }
}
