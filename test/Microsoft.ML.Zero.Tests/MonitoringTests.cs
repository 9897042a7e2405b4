using System.Globalization;
using Spectre.Console;
using Microsoft.ML.Zero.Monitoring;

namespace Microsoft.ML.Zero.Tests;

/// <summary>What a run shows and writes while it trains: console progress, DeepSpeed's csv_monitor and TensorBoard files.</summary>
[TestClass]
public sealed class MonitoringTests
{
    // 150 iris rows, 2 ranks x batch 8: 10 steps per epoch, the last of 6 rows.
    private static ZeroTrainerOptions Options(ZeroProgress progress, DeepSpeedOptions? deepSpeed = null) => new()
    {
        WorldSize = 2, BatchSize = 8, MaxEpoch = 2, Seed = 3, HiddenLayerSizes = new[] { 16 }, LearningRate = 0.01, Progress = progress,
        DeepSpeed = deepSpeed ?? new DeepSpeedOptions { StepsPerPrint = 5 },
    };

    [TestMethod]
    public void CsvAndTensorBoardMonitorsRecordEveryStepUnderDeepSpeedNames()
    {
        using var folder = new TempFolder("zero-monitor-");
        string json = $$"""
            { "steps_per_print": 100,
              "csv_monitor": { "enabled": true, "output_path": "{{folder.Path}}", "job_name": "iris" },
              "tensorboard": { "enabled": true, "output_path": "{{folder.Path}}", "job_name": "iris-tb" } }
            """;
        var mlContext = new MLContext(seed: 0);
        var log = TrainerLog.Capture(mlContext);
        mlContext.Zero().Trainer(Options(ZeroProgress.None, DeepSpeedOptions.FromDeepSpeedConfig(json))).Fit(IrisFixtures.Prepared(mlContext));

        string csv = folder.Combine("iris");
        var loss = ReadCsv(Path.Combine(csv, "Train_Samples_train_loss.csv"), "train_loss");
        var rate = ReadCsv(Path.Combine(csv, "Train_Samples_lr.csv"), "lr");
        var epochLoss = ReadCsv(Path.Combine(csv, "Train_Samples_epoch_loss.csv"), "epoch_loss");
        Assert.IsFalse(File.Exists(Path.Combine(csv, "Train_Samples_loss_scale.csv")), "fp32 has no loss scale");

        // One row per step; the step column counts the samples of all ranks so far.
        var expectedSamples = Enumerable.Range(1, 20).Select(step => (long)(step % 10 == 0 ? 150 * (step / 10) : 150 * (step / 10) + 16 * (step % 10))).ToArray();
        CollectionAssert.AreEqual(expectedSamples, loss.Select(r => r.Step).ToArray());
        CollectionAssert.AreEqual(expectedSamples, rate.Select(r => r.Step).ToArray());
        Assert.IsTrue(rate.All(r => r.Value == 0.01), "the learning rate is constant");
        Assert.IsTrue(loss.All(r => double.IsFinite(r.Value) && r.Value > 0), "losses are positive");
        CollectionAssert.AreEqual(new long[] { 150, 300 }, epochLoss.Select(r => r.Step).ToArray());
        var logged = log.Where(l => l.Contains(": mean training loss ", StringComparison.Ordinal)).Select(l => l.Split("loss ")[1].TrimEnd('.')).ToArray();
        CollectionAssert.AreEqual(logged, epochLoss.Select(r => r.Value.ToString("F4", CultureInfo.InvariantCulture)).ToArray());

        // TensorBoard's event file holds the same values under the same names.
        string events = Directory.GetFiles(folder.Combine("iris-tb"), "events.out.tfevents.*").Single();
        var scalars = TensorBoardEvents.ReadScalars(events);
        var tensorBoardLoss = scalars.Where(s => s.Tag == "Train/Samples/train_loss").ToArray();
        CollectionAssert.AreEqual(expectedSamples, tensorBoardLoss.Select(s => s.Step).ToArray());
        CollectionAssert.AreEqual(loss.Select(r => (float)r.Value).ToArray(), tensorBoardLoss.Select(s => s.Value).ToArray());
        Assert.AreEqual(2, scalars.Count(s => s.Tag == "Train/Samples/epoch_loss"));
    }

    [TestMethod]
    public void ValidationMetricsGoToTheLogAndBothMetricFiles()
    {
        using var folder = new TempFolder("zero-monitor-eval-");
        string json = $$"""
            { "csv_monitor": { "enabled": true, "output_path": "{{folder.Path}}", "job_name": "iris" },
              "tensorboard": { "enabled": true, "output_path": "{{folder.Path}}", "job_name": "iris-tb" } }
            """;
        var mlContext = new MLContext(seed: 0);
        var log = TrainerLog.Capture(mlContext);
        var data = IrisFixtures.Prepared(mlContext);
        var options = Options(ZeroProgress.None, DeepSpeedOptions.FromDeepSpeedConfig(json));
        options.ValidationSet = mlContext.Data.TakeRows(data, 60);
        mlContext.Zero().Trainer(options).Fit(data);

        var epochLines = log.Where(l => l.Contains(" Validation accuracy ", StringComparison.Ordinal)).ToArray();
        Assert.AreEqual(2, epochLines.Length, "one line per epoch");
        string[] files = { "accuracy", "macro_f1", "log_loss" };
        string[] logged = { "accuracy", "macro F1", "log-loss" };
        for (int m = 0; m < files.Length; m++)
        {
            var values = ReadCsv(Path.Combine(folder.Combine("iris"), $"Eval_Samples_{files[m]}.csv"), files[m]);
            CollectionAssert.AreEqual(new long[] { 150, 300 }, values.Select(r => r.Step).ToArray(), files[m]);
            for (int epoch = 0; epoch < 2; epoch++)
                StringAssert.Contains(epochLines[epoch], $"{logged[m]} {values[epoch].Value.ToString("F4", CultureInfo.InvariantCulture)}", files[m]);
        }
        var scalars = TensorBoardEvents.ReadScalars(Directory.GetFiles(folder.Combine("iris-tb"), "events.out.tfevents.*").Single());
        foreach (string file in files)
            Assert.AreEqual(2, scalars.Count(s => s.Tag == "Eval/Samples/" + file), file);
    }

    private static List<(long Step, double Value)> ReadCsv(string path, string header)
    {
        var lines = File.ReadAllLines(path);
        Assert.AreEqual($"step,{header}", lines[0], path);
        return lines.Skip(1).Select(line => line.Split(',')).Select(f => (long.Parse(f[0], CultureInfo.InvariantCulture), double.Parse(f[1], CultureInfo.InvariantCulture))).ToList();
    }

    [TestMethod]
    public void PlainLinesGoToStandardOutputAndNoneKeepsItQuiet()
    {
        string Run(ZeroProgress progress)
        {
            var output = new StringWriter();
            var original = Console.Out;
            Console.SetOut(output);
            try
            {
                var mlContext = new MLContext(seed: 0);
                mlContext.Zero().Trainer(Options(progress)).Fit(IrisFixtures.Prepared(mlContext));
            }
            finally
            {
                Console.SetOut(original);
            }
            return output.ToString();
        }

        var lines = Run(ZeroProgress.Lines).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        // Steps 5, 10, 15 and 20 print (steps_per_print 5), then each epoch's summary.
        Assert.AreEqual(4, lines.Count(l => l.Contains(", step ", StringComparison.Ordinal)), string.Join("\n", lines));
        Assert.IsTrue(lines.Any(l => l.StartsWith("Epoch 1/2, step 5/10: loss ", StringComparison.Ordinal)), string.Join("\n", lines));
        Assert.IsTrue(lines.Any(l => l.StartsWith("Epoch 2/2: mean training loss ", StringComparison.Ordinal)), string.Join("\n", lines));
        Assert.AreEqual("", Run(ZeroProgress.None).Trim());
    }

    [TestMethod]
    public void TheProgressBarShowsEpochStepLossRateScaleSpeedAndCompletes()
    {
        var output = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes, Interactive = InteractionSupport.Yes, ColorSystem = ColorSystemSupport.NoColors, Out = new AnsiConsoleOutput(output),
        });
        console.Profile.Width = 200;
        using (var bar = new ConsoleProgressBar(console))
        {
            bar.Start(0, 4);
            for (int step = 1; step <= 4; step++)
            {
                bar.StepTaken(new StepRecord((step + 1) / 2, 2, (step + 1) % 2 + 1, 2, step, 4, step * 16, 1.0 / step, 2e-4, 65536, false, 123.4));
                if (step % 2 == 0)
                    bar.EpochCompleted(new EpochRecord(step / 2, 2, step * 16, 0.5 / step,
                        step == 4 ? new ValidationMetrics(8, new Dictionary<ZeroMetric, double> { [ZeroMetric.Accuracy] = 0.875 }) : null));
            }
        }
        string text = WithoutEscapes(output.ToString());
        StringAssert.Contains(text, "Epoch 2/2  step 2/2  loss 0.2500  lr 0.0002  loss scale 65536  123.4 samples/s");
        StringAssert.Contains(text, "100%");
        StringAssert.Contains(text, "Epoch 1/2: mean training loss 0.2500.");
        StringAssert.Contains(text, "Epoch 2/2: mean training loss 0.1250. Validation accuracy 0.8750.");
    }

    // The terminal control sequences the live display redraws with.
    private static string WithoutEscapes(string text) => System.Text.RegularExpressions.Regex.Replace(text, @"\x1B\[[0-9;?]*[A-Za-z]|\x1B\]8;[^\x1B]*\x1B\\", "");

    [TestMethod]
    public void ATrainerReportsToTheBarOnTheConsoleWhenAskedTo()
    {
        var output = new StringWriter();
        var original = AnsiConsole.Console;
        AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes, Interactive = InteractionSupport.Yes, ColorSystem = ColorSystemSupport.NoColors, Out = new AnsiConsoleOutput(output),
        });
        AnsiConsole.Console.Profile.Width = 200;
        try
        {
            var mlContext = new MLContext(seed: 0);
            mlContext.Zero().Trainer(Options(ZeroProgress.Bar)).Fit(IrisFixtures.Prepared(mlContext));
        }
        finally
        {
            AnsiConsole.Console = original;
        }
        string text = WithoutEscapes(output.ToString());
        StringAssert.Contains(text, "Epoch 2/2  step 10/10  loss ");
        StringAssert.Contains(text, "100%");
        StringAssert.Contains(text, "Epoch 2/2: mean training loss ");
    }
}

/// <summary>
/// Reads the scalar summaries of a TensorBoard event file: TFRecord framing (length, its CRC, the record, its CRC)
/// around Event protobufs whose summary values hold a tag and a float.
/// </summary>
internal static class TensorBoardEvents
{
    public static List<(string Tag, long Step, float Value)> ReadScalars(string path)
    {
        var scalars = new List<(string, long, float)>();
        var bytes = File.ReadAllBytes(path);
        for (int offset = 0; offset < bytes.Length;)
        {
            long length = BitConverter.ToInt64(bytes, offset);
            var record = bytes.AsSpan(offset + 12, (int)length);
            offset += 12 + (int)length + 4;
            long step = 0;
            foreach (var (field, value, nested) in Fields(record))
            {
                if (field == 2)
                    step = value;
                if (field != 5)
                    continue;
                foreach (var (summaryField, _, summaryValue) in Fields(nested))
                {
                    if (summaryField != 1)
                        continue;
                    string tag = "";
                    float scalar = float.NaN;
                    foreach (var (valueField, bits, content) in Fields(summaryValue))
                    {
                        if (valueField == 1)
                            tag = System.Text.Encoding.UTF8.GetString(content);
                        if (valueField == 2)
                            scalar = BitConverter.Int32BitsToSingle((int)bits);
                    }
                    scalars.Add((tag, step, scalar));
                }
            }
        }
        return scalars;
    }

    // Protobuf fields: (number, varint or fixed value, length-delimited content).
    private static List<(int Field, long Value, byte[] Content)> Fields(ReadOnlySpan<byte> message)
    {
        var fields = new List<(int, long, byte[])>();
        int position = 0;
        long Varint(ReadOnlySpan<byte> data)
        {
            long result = 0;
            for (int shift = 0; ; shift += 7)
            {
                byte b = data[position++];
                result |= (long)(b & 0x7F) << shift;
                if (b < 0x80)
                    return result;
            }
        }
        while (position < message.Length)
        {
            long key = Varint(message);
            int field = (int)(key >> 3);
            switch (key & 7)
            {
                case 0: fields.Add((field, Varint(message), Array.Empty<byte>())); break;
                case 1: fields.Add((field, BitConverter.ToInt64(message.Slice(position, 8)), Array.Empty<byte>())); position += 8; break;
                case 5: fields.Add((field, BitConverter.ToInt32(message.Slice(position, 4)), Array.Empty<byte>())); position += 4; break;
                case 2:
                    int length = (int)Varint(message);
                    fields.Add((field, 0, message.Slice(position, length).ToArray()));
                    position += length;
                    break;
                default: throw new InvalidDataException($"Unexpected protobuf wire type {key & 7}.");
            }
        }
        return fields;
    }
}
