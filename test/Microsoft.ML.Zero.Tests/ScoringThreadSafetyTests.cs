using Microsoft.ML.Data;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// One model loaded from its zip, scoring on several threads at once as a web app does: a PredictionEngine per thread
/// (PredictionEnginePool-style) and batched Transform from each thread. Every thread's scores equal those of one
/// thread scoring alone, bit for bit. Engines that share a model are created with OwnsTransformer = false: by default a
/// PredictionEngine disposes its model when it is disposed.
/// </summary>
[TestClass]
public sealed class ScoringThreadSafetyTests
{
    // More threads than the 2 cores, so that forwards interleave and overlap.
    private const int Threads = 4;

    [TestMethod]
    public void OneLoadedMlpServesAPredictionEnginePerThreadAndBatchedTransformOnEveryThreadWithOneThreadsScores()
    {
        var mlContext = new MLContext(seed: 0);
        var rows = Datasets.Iris();
        var data = mlContext.Data.LoadFromEnumerable(rows);
        var trained = IrisFixtures.Pipeline(mlContext, new ZeroTrainerOptions { MaxEpoch = 10, HiddenLayerSizes = new[] { 64, 64 }, ScoringBatchSize = 16 }).Fit(data);
        using var folder = new TempFolder("zero-threads-mlp-");
        var model = SavedAndLoaded(mlContext, trained, data.Schema, folder.Combine("model.zip"));
        try
        {
            // The MLP's forward takes microseconds: many passes, so that threads meet inside it.
            AssertPredictionEnginesAgree(mlContext, model, rows, (IrisPrediction p) => p.Score, passes: 20);
            AssertTransformsAgree(model, data, passes: 20);
        }
        finally
        {
            (model as IDisposable)?.Dispose();
            (trained as IDisposable)?.Dispose();
        }
    }

    [TestMethod]
    [TestCategory("bert")]
    public void OneLoadedBertClassifierServesAPredictionEnginePerThreadAndBatchedTransformOnEveryThreadWithOneThreadsScores()
    {
        var mlContext = new MLContext(seed: 0);
        var split = mlContext.Data.TrainTestSplit(mlContext.Data.LoadFromEnumerable(SentimentData.All()), testFraction: 0.2, seed: 0);
        var options = new ZeroTextClassificationOptions
        {
            CheckpointPath = MiniLm.Directory(), Sentence1ColumnName = "Text", WorldSize = 1, BatchSize = 8, MaxEpoch = 1, MaxSequenceLength = 32,
            ScoringBatchSize = 16, Progress = ZeroProgress.None, DeepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Fp32 },
        };
        var trained = mlContext.Transforms.Conversion.MapValueToKey("Label")
            .Append(mlContext.Zero().TextClassification(options))
            .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(mlContext.Data.TakeRows(split.TrainSet, 64));
        // 40 test rows: three batches of 16 rows, the last one short.
        var test = mlContext.Data.TakeRows(split.TestSet, 40);
        var rows = mlContext.Data.CreateEnumerable<SentimentRow>(test, reuseRowObject: false).ToArray();
        using var folder = new TempFolder("zero-threads-bert-");
        var model = SavedAndLoaded(mlContext, trained, split.TrainSet.Schema, folder.Combine("model.zip"));
        try
        {
            AssertPredictionEnginesAgree(mlContext, model, rows, (SentimentPrediction p) => p.Score, passes: 2);
            AssertTransformsAgree(model, test, passes: 2);
        }
        finally
        {
            (model as IDisposable)?.Dispose();
            (trained as IDisposable)?.Dispose();
        }
    }

    [TestMethod]
    public void AnEngineThatOwnsASharedModelDisposesItAndTheOtherEnginesSayWhichOptionToSet()
    {
        var mlContext = new MLContext(seed: 0);
        var rows = Datasets.Iris();
        var data = mlContext.Data.LoadFromEnumerable(rows);
        var trained = IrisFixtures.Pipeline(mlContext, new ZeroTrainerOptions { MaxEpoch = 1 }).Fit(data);
        using var folder = new TempFolder("zero-threads-owner-");
        var model = SavedAndLoaded(mlContext, trained, data.Schema, folder.Combine("model.zip"));
        using var sharing = mlContext.Model.CreatePredictionEngine<IrisRow, IrisPrediction>(model, Shared);
        Assert.AreEqual(3, sharing.Predict(rows[0]).Score.Length);

        // ML.NET's default: the engine owns the model, and disposing it disposes the model the other engine scores with.
        mlContext.Model.CreatePredictionEngine<IrisRow, IrisPrediction>(model).Dispose();
        var error = Assert.ThrowsExactly<ObjectDisposedException>(() => sharing.Predict(rows[0]));
        StringAssert.Contains(error.Message, "The MLP model was disposed");
        StringAssert.Contains(error.Message, "OwnsTransformer = false");
        var transformError = Assert.ThrowsExactly<ObjectDisposedException>(() => Scores(model.Transform(data)));
        StringAssert.Contains(transformError.Message, "OwnsTransformer = false");
        Assert.ThrowsExactly<ObjectDisposedException>(() => mlContext.Model.Save(model, data.Schema, folder.Combine("again.zip")));
        // Disposing again (another owning engine, the app at shutdown) does nothing.
        (model as IDisposable)!.Dispose();
        (trained as IDisposable)?.Dispose();
    }

    // What an engine per thread over one model needs: ML.NET's engines dispose their model unless told not to.
    private static readonly PredictionEngineOptions Shared = new() { OwnsTransformer = false };

    private static ITransformer SavedAndLoaded(MLContext mlContext, ITransformer model, DataViewSchema schema, string path)
    {
        mlContext.Model.Save(model, schema, path);
        return mlContext.Model.Load(path, out _);
    }

    // Each thread makes its own engine from the one model and predicts every row, starting at a row of its own so that
    // threads score different rows at the same moment.
    private static void AssertPredictionEnginesAgree<TRow, TPrediction>(MLContext mlContext, ITransformer model, TRow[] rows,
        Func<TPrediction, float[]> score, int passes)
        where TRow : class where TPrediction : class, new()
    {
        using var alone = mlContext.Model.CreatePredictionEngine<TRow, TPrediction>(model, Shared);
        var expected = rows.Select(row => score(alone.Predict(row)).ToArray()).ToArray();

        var perThread = OnThreads(thread =>
        {
            using var engine = mlContext.Model.CreatePredictionEngine<TRow, TPrediction>(model, Shared);
            var scores = new float[rows.Length][];
            for (int pass = 0; pass < passes; pass++)
                for (int k = 0; k < rows.Length; k++)
                {
                    int row = (k + thread * rows.Length / Threads) % rows.Length;
                    var current = score(engine.Predict(rows[row])).ToArray();
                    if (pass > 0 && !scores[row].SequenceEqual(current))
                        throw new AssertFailedException($"thread {thread}, row {row}: pass {pass} scored [{string.Join(", ", current)}], pass 0 [{string.Join(", ", scores[row])}]");
                    scores[row] = current;
                }
            return scores;
        });
        for (int thread = 0; thread < Threads; thread++)
            for (int row = 0; row < rows.Length; row++)
                CollectionAssert.AreEqual(expected[row], perThread[thread][row], $"PredictionEngine on thread {thread}, row {row}");
    }

    // Each thread calls Transform on the one model and reads the scores through a cursor, batch by batch.
    private static void AssertTransformsAgree(ITransformer model, IDataView data, int passes)
    {
        var expected = Scores(model.Transform(data));
        Assert.IsTrue(expected.Length > 0);
        var perThread = OnThreads(_ => Enumerable.Range(0, passes).Select(_ => Scores(model.Transform(data))).ToArray());
        for (int thread = 0; thread < Threads; thread++)
            for (int pass = 0; pass < passes; pass++)
            {
                Assert.AreEqual(expected.Length, perThread[thread][pass].Length, $"thread {thread}, pass {pass}: rows");
                for (int row = 0; row < expected.Length; row++)
                    CollectionAssert.AreEqual(expected[row], perThread[thread][pass][row], $"Transform on thread {thread}, pass {pass}, row {row}");
            }
    }

    // Each row's scores copied out as read: the cursor reuses one buffer.
    private static float[][] Scores(IDataView scored) =>
        scored.GetColumn<VBuffer<float>>("Score").Select(v => v.DenseValues().ToArray()).ToArray();

    // Runs body on Threads threads released together; rethrows the first failure.
    private static T[] OnThreads<T>(Func<int, T> body)
    {
        using var start = new Barrier(Threads);
        var tasks = Enumerable.Range(0, Threads).Select(thread => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            return body(thread);
        }, TaskCreationOptions.LongRunning)).ToArray();
        try
        {
            Task.WaitAll(tasks);
        }
        catch (AggregateException failure)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure.InnerExceptions[0]).Throw();
        }
        return tasks.Select(t => t.Result).ToArray();
    }
}
