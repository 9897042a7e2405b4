using System.Globalization;
using Microsoft.ML.Zero.Distributed;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// What a crash while writing leaves behind, made by hand: a checkpoint saved again under its tag and stopped between
/// the renames, stale <c>.partial</c> folders and <c>latest.tmp</c>, metric rows written past the checkpoint a run
/// resumes from; and the model zip saved by temp file and rename.
/// </summary>
[TestClass]
public sealed class AtomicFilesTests
{
    // Optimizer steps of a Linear(4, 3) on one rank, fp32: each changes the weights.
    private static void TakeSteps(ZeroEngine engine, int steps)
    {
        for (int i = 0; i < steps; i++)
        {
            engine.Backward(engine.Forward(ones(2, 4) * (i + 1)).pow(2).mean());
            engine.Step();
        }
    }

    [TestMethod]
    public void ACrashWhileATagIsSavedAgainResumesFromTheReplacedCopy()
    {
        using var temp = new TempFolder("zero-replaced-");
        string directory = temp.Path;
        ZeroEngine.Launch(1, rank =>
        {
            using var model = rank.CreateModel(1, () => nn.Linear(4, 3));
            using var engine = ZeroEngine.Initialize(model);
            TakeSteps(engine, 1);
            engine.SaveCheckpoint(directory, "best");
            float[] saved = IrisFixtures.Weights(model);
            TakeSteps(engine, 2);

            // Saving "best" again stopped after the old copy was moved aside and before the new one was renamed in:
            // latest names "best", which is missing; best.replaced is complete, best.partial is not.
            Directory.Move(temp.Combine("best"), temp.Combine("best.replaced"));
            Directory.CreateDirectory(temp.Combine("best.partial"));
            File.WriteAllBytes(temp.Combine("best.partial", "model_states.bin"), new byte[10]);
            Assert.AreEqual("best", File.ReadAllText(temp.Combine("latest")));

            engine.LoadCheckpoint(directory);
            Assert.AreEqual(1, engine.GlobalStep);
            CollectionAssert.AreEqual(saved, IrisFixtures.Weights(model), "the weights of best.replaced");
            TakeSteps(engine, 2);
            engine.LoadCheckpoint(directory, "best");
            Assert.AreEqual(1, engine.GlobalStep, "the tag named explicitly falls back too");

            // The next save of the tag puts a complete folder in place and removes both leftovers.
            TakeSteps(engine, 2);
            engine.SaveCheckpoint(directory, "best");
            CollectionAssert.AreEquivalent(new[] { "best", "latest" }, Directory.GetFileSystemEntries(directory).Select(Path.GetFileName).ToArray());
            engine.LoadCheckpoint(directory);
            Assert.AreEqual(3, engine.GlobalStep);
        });
    }

    [TestMethod]
    public void StaleLeftoversOfACrashedSaveAreRemovedAtTheNextSave()
    {
        using var temp = new TempFolder("zero-leftovers-");
        string directory = temp.Path;
        ZeroEngine.Launch(1, rank =>
        {
            using var model = rank.CreateModel(1, () => nn.Linear(4, 3));
            using var engine = ZeroEngine.Initialize(model);
            TakeSteps(engine, 1);
            engine.SaveCheckpoint(directory);

            // A save of step 2 that died while writing, one that died before latest.tmp was renamed, and a re-save of
            // step 1 that died after its new folder was in place but before the old copy was deleted.
            Directory.CreateDirectory(temp.Combine("global_step2.partial"));
            File.WriteAllText(temp.Combine("global_step2.partial", "state.json"), "{");
            File.WriteAllText(temp.Combine("latest.tmp"), "global_step2");
            Directory.CreateDirectory(temp.Combine("global_step1.replaced"));
            foreach (string file in Directory.GetFiles(temp.Combine("global_step1")))
                File.Copy(file, Path.Combine(temp.Combine("global_step1.replaced"), Path.GetFileName(file)));

            TakeSteps(engine, 2);
            engine.SaveCheckpoint(directory);
            CollectionAssert.AreEquivalent(new[] { "global_step1", "global_step3", "latest" },
                Directory.GetFileSystemEntries(directory).Select(Path.GetFileName).ToArray());
            Assert.AreEqual("global_step3", File.ReadAllText(temp.Combine("latest")));
        });
    }

    [TestMethod]
    public void AResumedRunDropsTheMetricRowsWrittenPastItsCheckpoint()
    {
        // Iris, 2 ranks x 8: 10 steps per epoch, a checkpoint every 3. The data fails when read for epoch 3, after
        // step 20 was logged; the run resumes from step 18 (278 samples) and steps 19 and 20 are logged again.
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Prepared(mlContext);
        using var folder = new TempFolder("zero-csv-resume-");
        ZeroTrainerOptions Options() => new()
        {
            WorldSize = 2, BatchSize = 8, MaxEpoch = 3, Seed = 7, HiddenLayerSizes = new[] { 16 }, LearningRate = 0.01,
            CheckpointDirectory = folder.Combine("checkpoints"), CheckpointEverySteps = 3,
            DeepSpeed = new DeepSpeedOptions { CsvMonitor = new MonitorOptions { Enabled = true, OutputPath = folder.Path, JobName = "iris" } },
        };
        int read = 0;
        var failing = mlContext.Data.FilterByCustomPredicate<IrisFeatures>(data, _ =>
            Interlocked.Increment(ref read) > 150 * 5 ? throw new IOException("the disk went away") : false);
        Assert.ThrowsExactly<ZeroRankFailedException>(() => mlContext.Zero().Trainer(Options()).Fit(failing));
        string loss = folder.Combine("iris", "Train_Samples_train_loss.csv"), epochLoss = folder.Combine("iris", "Train_Samples_epoch_loss.csv");
        Assert.AreEqual(300, Steps(loss)[^1], "the stopped run logged step 20");
        // A crash in the middle of a row leaves it torn.
        File.AppendAllText(loss, "31");

        mlContext.Zero().Trainer(Options()).Fit(data);
        var expected = Enumerable.Range(1, 30).Select(step => step % 10 == 0 ? 150L * (step / 10) : 150L * (step / 10) + 16 * (step % 10)).ToArray();
        CollectionAssert.AreEqual(expected, Steps(loss));
        CollectionAssert.AreEqual(expected, Steps(folder.Combine("iris", "Train_Samples_lr.csv")));
        CollectionAssert.AreEqual(new long[] { 150, 300, 450 }, Steps(epochLoss));
    }

    // The step column of a csv_monitor file, after checking its header and that every row is whole.
    private static long[] Steps(string path)
    {
        var lines = File.ReadAllLines(path);
        StringAssert.StartsWith(lines[0], "step,");
        return lines.Skip(1).Select(line =>
        {
            var fields = line.Split(',');
            Assert.AreEqual(2, fields.Length, $"row '{line}' of {path}");
            double.Parse(fields[1], CultureInfo.InvariantCulture);
            return long.Parse(fields[0], CultureInfo.InvariantCulture);
        }).ToArray();
    }

    [TestMethod]
    public void ASaveThatFailsKeepsThePreviousModelZipAndLeavesNoTempFile()
    {
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Load(mlContext);
        using var folder = new TempFolder("zero-model-zip-");
        string path = folder.Combine("model.zip");
        var model = mlContext.Transforms.Conversion.MapValueToKey("Label").Fit(data);
        mlContext.Model.SaveAtomically(model, data.Schema, path);
        byte[] saved = File.ReadAllBytes(path);
        mlContext.Model.Load(path, out _);

        // A custom mapping without a contract name cannot be saved: ML.NET throws while writing the zip.
        var unsaveable = mlContext.Transforms.CustomMapping<IrisRowLabel, LabelCopy>((input, output) => output.Copy = input.Label, contractName: null).Fit(data);
        Assert.Throws<Exception>(() => mlContext.Model.SaveAtomically(unsaveable, data.Schema, path));
        CollectionAssert.AreEqual(saved, File.ReadAllBytes(path), "the previous model.zip is intact");
        CollectionAssert.AreEqual(new[] { "model.zip" }, Directory.GetFileSystemEntries(folder.Path).Select(Path.GetFileName).ToArray(), "no temp file left");

        // A save that succeeds replaces it.
        var other = mlContext.Transforms.Conversion.MapValueToKey("Label").Append(mlContext.Transforms.Concatenate("Both", "Features")).Fit(data);
        mlContext.Model.SaveAtomically(other, data.Schema, path);
        var loaded = mlContext.Model.Load(path, out var schema);
        Assert.IsNotNull(loaded.GetOutputSchema(schema).GetColumnOrNull("Both"));
        CollectionAssert.AreEqual(new[] { "model.zip" }, Directory.GetFileSystemEntries(folder.Path).Select(Path.GetFileName).ToArray());

        var noFolder = Assert.ThrowsExactly<DirectoryNotFoundException>(() => mlContext.Model.SaveAtomically(model, data.Schema, folder.Combine("missing", "model.zip")));
        StringAssert.Contains(noFolder.Message, folder.Combine("missing"));
    }
}

public sealed class IrisRowLabel
{
    public string Label { get; set; } = "";
}

public sealed class LabelCopy
{
    public string Copy { get; set; } = "";
}
