using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// The text trainer with GroupByLength on a tiny BERT, fp32: ranks train as one rank with the same global batch, a run
/// stopped mid-epoch resumes bit-identically, and a checkpoint is resumed only with the grouping it was written with.
/// </summary>
[TestClass]
public sealed class GroupByLengthTrainingTests
{
    // 320 UCI sentences in global batches of 16: 20 steps an epoch, windows of 5 batches (a quarter of 20).
    private const int Rows = 320;

    private static TempFolder? _models;
    private static string _tiny = "", _tinyWithDropout = "";

    [ClassInitialize]
    public static void WriteModels(TestContext context)
    {
        _models = new TempFolder("zero-tiny-bert-");
        _tiny = TinyBertFolder.Write(_models.Combine("plain"), hiddenDropout: 0);
        _tinyWithDropout = TinyBertFolder.Write(_models.Combine("dropout"), hiddenDropout: 0.1);
    }

    [ClassCleanup]
    public static void DeleteModels() => _models?.Dispose();

    private static ZeroTextClassificationOptions Options(string model, int worldSize, int batch, int accumulation, bool grouped, int epochs = 2,
        string? checkpoints = null, bool sgd = false)
    {
        var deepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Fp32, GradientAccumulationSteps = accumulation };
        if (sgd)
            deepSpeed.Optimizer.Type = ZeroOptimizer.Sgd;
        return new()
        {
            CheckpointPath = model, Sentence1ColumnName = "Text", WorldSize = worldSize, BatchSize = batch, MaxEpoch = epochs, Seed = 7,
            LearningRate = sgd ? 0.1 : 1e-3, MaxSequenceLength = TinyBertFolder.MaxPositions, GroupByLength = grouped, Progress = ZeroProgress.None,
            CheckpointDirectory = checkpoints, CheckpointEverySteps = checkpoints is null ? 0 : 7, DeepSpeed = deepSpeed,
        };
    }

    private static IDataView Keyed(MLContext mlContext, IDataView? rows = null)
    {
        var sentences = mlContext.Data.LoadFromEnumerable(SentimentData.All().Take(Rows));
        return mlContext.Transforms.Conversion.MapValueToKey("Label").Fit(sentences).Transform(rows ?? sentences);
    }

    private static float[] Train(MLContext mlContext, ZeroTextClassificationOptions options, IDataView data)
    {
        using var model = mlContext.Zero().TextClassification(options).Fit(data);
        return ((BertScorer)model.Scorer).Model.parameters().SelectMany(p => p.data<float>().ToArray()).ToArray();
    }

    private static double MaxDifference(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();

    [TestMethod]
    public void TwoRanksGroupedByLengthMatchOneRankWithTheSameGlobalBatchAndTheLogSaysSo()
    {
        var mlContext = new MLContext(seed: 0);
        var lines = TrainerLog.Capture(mlContext);
        var data = Keyed(mlContext);

        // SGD: the ranks pad their micro-batches to other lengths than the single rank does, which changes the gradients'
        // rounding (about 1e-7 apart here), and AdamW's division by the root of tiny second moments would magnify that to 1e-4.
        float[] single = Train(mlContext, Options(_tiny, 1, 8, 2, grouped: true, sgd: true), data);
        float[] ranks = Train(mlContext, Options(_tiny, 2, 4, 2, grouped: true, sgd: true), data);
        float[] ungrouped = Train(mlContext, Options(_tiny, 2, 4, 2, grouped: false, sgd: true), data);

        double difference = MaxDifference(single, ranks);
        Assert.IsTrue(difference <= 1e-5, $"max |1 x 8 x 2 - 2 x 4 x 2| grouped by length = {difference}");
        double ungroupedDifference = MaxDifference(ranks, ungrouped);
        Assert.IsTrue(ungroupedDifference > 1e-3, $"grouping by length changed the weights by only {ungroupedDifference}");

        string grouping = "Batches are grouped by length: each window of 5 batches of 16 rows (GroupByLengthWindow 50, at most a quarter of the epoch's batches)";
        Assert.AreEqual(2, lines.Count(line => line.StartsWith(grouping, StringComparison.Ordinal)), string.Join("\n", lines));
        var padding = lines.Select(line => Regex.Match(line, @"^Epoch 1: padding is ([\d.]+)% of the tokens \(([\d.]+)% without grouping by length\)\.$"))
            .Where(match => match.Success).ToList();
        Assert.AreEqual(2, padding.Count, string.Join("\n", lines));
        foreach (var match in padding)
        {
            double grouped = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture), shuffled = double.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture);
            Assert.IsTrue(grouped < shuffled / 3, match.Value);
        }
        // Two grouped runs of 2 epochs log 4 padding lines; the ungrouped run logs none.
        Assert.AreEqual(4, lines.Count(line => line.Contains(": padding is ", StringComparison.Ordinal)), string.Join("\n", lines));
    }

    // The data fails when read for the third epoch: one pass counts the rows, one counts their tokens, then each of the 2 ranks reads every epoch.
    private static IDataView FailingInEpoch3(MLContext mlContext)
    {
        int read = 0;
        var failing = mlContext.Data.FilterByCustomPredicate<SentimentRow>(mlContext.Data.LoadFromEnumerable(SentimentData.All().Take(Rows)), _ =>
            Interlocked.Increment(ref read) > Rows * (2 + 2 * 2) ? throw new IOException("the disk went away") : false);
        return Keyed(mlContext, failing);
    }

    [TestMethod]
    public void AGroupedRunStoppedMidEpochResumesToTheUninterruptedWeightsAndOnlyWithGrouping()
    {
        var mlContext = new MLContext(seed: 0);
        var lines = TrainerLog.Capture(mlContext);
        var data = Keyed(mlContext);
        using var directory = new TempFolder("zero-grouped-checkpoints-");
        ZeroTextClassificationOptions Grouped(string? checkpoints, bool grouped = true) => Options(_tinyWithDropout, 2, 4, 2, grouped, epochs: 3, checkpoints);
        float[] uninterrupted = Train(mlContext, Grouped(null), data);

        var failure = Assert.ThrowsExactly<ZeroRankFailedException>(() => Train(mlContext, Grouped(directory.Path), FailingInEpoch3(mlContext)));
        StringAssert.Contains(failure.ToString(), "the disk went away");
        // Checkpoints every 7 steps: the last before epoch 3 is step 35, the 15th of epoch 2's 20.
        Assert.AreEqual("global_step35", File.ReadAllText(directory.Combine("latest")));

        var ungrouped = Assert.ThrowsExactly<ZeroRankFailedException>(() => Train(mlContext, Grouped(directory.Path, grouped: false), data));
        StringAssert.Contains(ungrouped.ToString(), "was written with GroupByLength on (GroupByLengthWindow 50); this run has off.");

        float[] resumed = Train(mlContext, Grouped(directory.Path), data);
        Assert.IsTrue(lines.Any(l => l.StartsWith("Resuming from", StringComparison.Ordinal) && l.Contains("epoch 2, step 15 of it, global step 35", StringComparison.Ordinal)),
            string.Join("\n", lines));
        CollectionAssert.AreEqual(uninterrupted, resumed, "resumed weights differ from the uninterrupted run's");
    }

    [TestMethod]
    public void ACheckpointWrittenWithoutGroupingIsNotResumedWithIt()
    {
        var mlContext = new MLContext(seed: 0);
        var data = Keyed(mlContext);
        using var directory = new TempFolder("zero-ungrouped-checkpoints-");
        Train(mlContext, Options(_tiny, 2, 4, 2, grouped: false, epochs: 1, directory.Path), data);

        var failure = Assert.ThrowsExactly<ZeroRankFailedException>(() => Train(mlContext, Options(_tiny, 2, 4, 2, grouped: true, epochs: 1, directory.Path), data));
        StringAssert.Contains(failure.ToString(), "was written with GroupByLength off; this run has on (GroupByLengthWindow 50).");
    }

    [TestMethod]
    public void RanksWhoseRowsHaveOtherLengthsAreRefused()
    {
        // Processes reading data that tokenizes differently would each group their own way, and train on wrong rows.
        var failure = Assert.ThrowsExactly<ZeroRankFailedException>(() => TinyShardedRun.Run(communicator =>
        {
            var lengths = Enumerable.Range(0, TinyShardedRun.Rows).Select(row => 3 + row % 5).ToArray();
            lengths[7] += communicator.Rank;
            return new ShardedTraining(TinyShardedRun.Rows, new BatchSizes(16, 8, 1), 1, 5, TinyShardedRun.Settings)
            {
                LengthGrouping = new LengthGroupedOrder(lengths, 50),
            };
        }, TimeSpan.FromSeconds(20)));
        StringAssert.Contains(failure.Message, "The ranks differ in GroupByLength: rank(s) 1 differ from rank 0");
    }

    [TestMethod]
    public void AWindowBelowOneBatchIsRefusedNamingTheOption()
    {
        var options = Options(_tiny, 1, 8, 1, grouped: true);
        options.GroupByLengthWindow = 0;
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new MLContext().Zero().TextClassification(options));
        StringAssert.Contains(error.Message, "ZeroTextClassificationOptions.GroupByLengthWindow");
    }
}
