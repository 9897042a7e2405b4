using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using System.Text;
using Microsoft.ML.Zero.Engine;
using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.Tensors;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// Fuzz tests of the file readers: small valid files (a tiny ONNX BERT export, the safetensors it converts to, an iris
/// MLP and a tiny BERT model zip, ds_configs) are damaged at random with fixed seeds, and each case must end in success
/// or in the reader's documented exception: never another exception type, a hang, or an allocation far above the
/// input's size. A failure lists each case by reader and index with what went wrong; the inputs are kept under
/// <c>$TMPDIR/zero-fuzz-failures</c> to turn into regression tests.
/// </summary>
[TestClass]
public sealed class ReaderFuzzTests
{
    // Cases per reader: 4,200 in all, about 12 s on 2 cores.
    private const int OnnxCases = 1000, SafetensorsCases = 1000, MlpZipCases = 400, BertZipCases = 300, DeepSpeedCases = 1500;

    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(10);

    // ZERO_FUZZ_SCALE=20 runs twenty times the cases (new ones after the usual), for a longer search by hand.
    private static readonly int Scale = int.TryParse(Environment.GetEnvironmentVariable("ZERO_FUZZ_SCALE"), out int scale) && scale > 1 ? scale : 1;

    private static TempFolder? _folder;
    private static byte[][] _onnx = Array.Empty<byte[]>();
    private static string _vocab = "";
    private static byte[] _safetensors = Array.Empty<byte>();
    private static byte[] _mlpZip = Array.Empty<byte>(), _bertZip = Array.Empty<byte>();

    [ClassInitialize]
    public static void MakeSeeds(TestContext context)
    {
        TorchRuntime.EnsureLoaded();
        _folder = new TempFolder("zero-fuzz-");
        _onnx = new[] { TinyOnnxBert.Fused(), TinyOnnxBert.Decomposed() };
        _vocab = _folder.Combine("vocab.txt");
        File.WriteAllLines(_vocab, TinyOnnxBert.Vocabulary);

        // The seeds are valid: each ONNX layout converts, and the converted folder loads into a BERT of its config.
        for (int i = 0; i < _onnx.Length; i++)
        {
            string onnx = _folder.Combine($"seed{i}.onnx");
            File.WriteAllBytes(onnx, _onnx[i]);
            OnnxBertImporter.ConvertToHuggingFaceFolder(onnx, _vocab, _folder.Combine("bert"));
        }
        var checkpoint = BertCheckpoint.Open(_folder.Combine("bert"));
        using (var model = new BertModel(checkpoint.Config, new Generator(0)))
            checkpoint.LoadInto(model);
        _safetensors = File.ReadAllBytes(checkpoint.WeightsPath);

        var mlContext = new MLContext(seed: 0);
        var iris = IrisFixtures.Load(mlContext);
        var mlp = IrisFixtures.Pipeline(mlContext, new ZeroTrainerOptions { MaxEpoch = 1, HiddenLayerSizes = new[] { 5 } }).Fit(iris);
        _mlpZip = Save(mlContext, mlp, iris.Schema);
        _bertZip = SaveTinyBert(mlContext, checkpoint.Config);
        foreach (var zip in new[] { _mlpZip, _bertZip })
            (mlContext.Model.Load(new MemoryStream(zip), out _) as IDisposable)?.Dispose();
    }

    [ClassCleanup]
    public static void DeleteSeeds() => _folder?.Dispose();

    private static byte[] Save(MLContext mlContext, ITransformer model, DataViewSchema schema)
    {
        var stream = new MemoryStream();
        mlContext.Model.Save(model, schema, stream);
        return stream.ToArray();
    }

    private static byte[] SaveTinyBert(MLContext mlContext, BertConfig config)
    {
        var rows = mlContext.Data.LoadFromEnumerable(new[] { new SentimentRow { Text = "good movie", Label = "1" }, new SentimentRow { Text = "bad movie", Label = "0" } });
        var keyed = mlContext.Transforms.Conversion.MapValueToKey("Label").Fit(rows).Transform(rows);
        var encoder = new BertTextEncoder(Encoding.UTF8.GetBytes(string.Join("\n", TinyOnnxBert.Vocabulary) + "\n"), lowerCase: true, 6);
        var scorer = new BertScorer(new BertClassifier(config, 2, new Generator(0)), encoder, "Text", null);
        using var transformer = new ZeroTransformer(scorer, new ScoreColumns("Score", "PredictedLabel", LabelKeyValues.FromLabel(keyed.Schema["Label"], 2)), 4);
        return Save(mlContext, transformer, keyed.Schema);
    }

    [TestMethod]
    public void OnnxImportRefusesDamagedFilesWithInvalidData()
    {
        string onnx = _folder!.Combine("case.onnx"), output = _folder.Combine("converted");
        Fuzz("onnx", OnnxCases, 1000, random =>
        {
            byte[] seed = _onnx[random.Next(_onnx.Length)];
            // Two cases in three damage the protobuf fields (which bytes alone seldom reach), the rest the bytes.
            byte[] input = random.Next(3) == 0 ? Mutations.Bytes(seed, random) : ProtoMutations.Mutate(seed, random);
            File.WriteAllBytes(onnx, input);
            return (input, () =>
            {
                OnnxBertImporter.ConvertToHuggingFaceFolder(onnx, _vocab, output);
                // What converts must be a folder this library reads: a config out of range would fail only at training.
                try
                {
                    BertCheckpoint.Open(output);
                }
                catch (InvalidDataException e)
                {
                    throw new FuzzOracleException($"the conversion succeeded, but its folder does not open: {e.Message}", e);
                }
            });
        }, error => error is InvalidDataException && error.Message.Contains(onnx));
    }

    [TestMethod]
    public void SafetensorsLoadRefusesDamagedHeadersWithInvalidData()
    {
        // A copy of the converted folder whose model.safetensors each case replaces, loaded into one model.
        string folder = _folder!.Combine("safetensors");
        Directory.CreateDirectory(folder);
        foreach (string file in Directory.GetFiles(_folder.Combine("bert")))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)), overwrite: true);
        string weights = Path.Combine(folder, "model.safetensors");
        var checkpoint = BertCheckpoint.Open(folder);
        using var model = new BertModel(checkpoint.Config, new Generator(0));
        int headerLength = 8 + (int)BitConverter.ToUInt64(_safetensors, 0);
        string header = Encoding.UTF8.GetString(_safetensors, 8, headerLength - 8);
        byte[] data = _safetensors[headerLength..];
        Fuzz("safetensors", SafetensorsCases, 2000, random =>
        {
            byte[] input;
            if (random.Next(2) == 0)
            {
                input = Mutations.Bytes(_safetensors, random, focus: headerLength);
            }
            else
            {
                // The header's JSON changed; its length prefix rewritten to fit, or (one time in four) kept.
                byte[] json = Encoding.UTF8.GetBytes(Mutations.Json(header, random));
                ulong length = random.Next(4) == 0 ? (ulong)(headerLength - 8) : (ulong)json.Length;
                input = [.. BitConverter.GetBytes(length), .. json, .. data];
            }
            File.WriteAllBytes(weights, input);
            return (input, () => BertCheckpoint.Open(folder).LoadInto(model));
        }, error => error is InvalidDataException && error.Message.Contains(weights));
    }

    [TestMethod]
    public void MlpZipLoadRefusesDamagedEntriesWithInvalidData() => FuzzZip("mlp-zip", _mlpZip, MlpZipCases, 3000, (mlContext, model) =>
    {
        var scored = model.Transform(IrisFixtures.Load(mlContext));
        _ = mlContext.Data.CreateEnumerable<IrisPrediction>(scored, reuseRowObject: false).Take(2).ToList();
    });

    [TestMethod]
    public void BertZipLoadRefusesDamagedEntriesWithInvalidData() => FuzzZip("bert-zip", _bertZip, BertZipCases, 4000, (mlContext, model) =>
    {
        var scored = model.Transform(mlContext.Data.LoadFromEnumerable(new[] { new SentimentRow { Text = "good movie" } }));
        _ = scored.Preview().RowView.Length;
    });

    /// <summary>
    /// Damages one entry of the trainer's folder in <paramref name="zip"/> (Model.key, TorchWeights.bin, vocab.txt), or
    /// one time in ten the zip's own bytes, and loads it. ML.NET calls the loader through reflection, so the loader's
    /// exception is the innermost of TargetInvocationExceptions; ML.NET's own checks of its entries throw FormatException.
    /// A model that loads must score.
    /// </summary>
    private static void FuzzZip(string reader, byte[] zip, int cases, int seed, Action<MLContext, ITransformer> score)
    {
        var entries = new List<(string Name, byte[] Bytes)>();
        using (var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read))
        {
            foreach (var entry in archive.Entries)
            {
                using var stream = entry.Open();
                var bytes = new MemoryStream();
                stream.CopyTo(bytes);
                entries.Add((entry.FullName, bytes.ToArray()));
            }
        }
        string folder = entries.Single(e => e.Name.EndsWith("/TorchWeights.bin", StringComparison.Ordinal)).Name[..^"TorchWeights.bin".Length];
        int[] targets = entries.Select((e, i) => (e, i)).Where(p => p.e.Name.StartsWith(folder, StringComparison.Ordinal)).Select(p => p.i).ToArray();

        Fuzz(reader, cases, seed, random =>
        {
            byte[] input;
            if (random.Next(10) == 0)
            {
                input = Mutations.Bytes(zip, random);
            }
            else
            {
                int target = targets[random.Next(targets.Length)];
                var stream = new MemoryStream();
                using (var archive = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true))
                {
                    for (int i = 0; i < entries.Count; i++)
                    {
                        using var entry = archive.CreateEntry(entries[i].Name, CompressionLevel.NoCompression).Open();
                        entry.Write(i == target ? Mutations.Bytes(entries[i].Bytes, random) : entries[i].Bytes);
                    }
                }
                input = stream.ToArray();
            }
            return (input, () =>
            {
                var mlContext = new MLContext(seed: 0);
                var model = mlContext.Model.Load(new MemoryStream(input), out _);
                try
                {
                    score(mlContext, model);
                }
                catch (ArgumentOutOfRangeException e) when (e.ParamName?.Contains("schema", StringComparison.OrdinalIgnoreCase) == true)
                {
                    // A column name in the zip changed: the model loaded, and scoring names the column it misses.
                }
                finally
                {
                    (model as IDisposable)?.Dispose();
                }
            });
        }, error => Innermost(error) switch
        {
            InvalidDataException or FormatException => true,
            // ML.NET's own reading, before or beside this library's loader: the loader assembly that Model.key's header
            // names (FileLoadException, FileNotFoundException, CultureNotFoundException), the Schema entry
            // (EndOfStreamException, InvalidOperationException for a version it cannot read).
            IOException or ArgumentException or InvalidOperationException when ThrownByMlNet(Innermost(error)) => true,
            _ => false,
        });
    }

    private static readonly string[] DeepSpeedSeeds =
    {
        """
        {
          "train_batch_size": 32, "train_micro_batch_size_per_gpu": 8, "gradient_accumulation_steps": 2, "gradient_clipping": 1.0,
          "prescale_gradients": false, "gradient_predivide_factor": 2.0, "steps_per_print": 5, "wall_clock_breakdown": true,
          "communication_data_type": "bf16", "data_types": { "grad_accum_dtype": "fp32" },
          "bf16": { "enabled": true },
          "optimizer": { "type": "AdamW", "params": { "lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01 } },
          "scheduler": { "type": "WarmupDecayLR", "params": { "warmup_min_lr": 0, "warmup_max_lr": 0.001, "warmup_num_steps": 10,
                         "total_num_steps": 100, "warmup_type": "linear" } },
          "zero_optimization": { "stage": 0, "overlap_comm": true, "reduce_bucket_size": 5e8, "contiguous_gradients": true,
                                 "offload_optimizer": false, "offload_param": { "device": "none" } },
          "tensorboard": { "enabled": true, "output_path": "runs", "job_name": "fuzz" },
          "csv_monitor": { "enabled": false, "output_path": "csv", "job_name": "fuzz" }
        }
        """,
        """
        {
          "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto", "train_batch_size": "auto",
          "fp16": { "enabled": "auto", "loss_scale": 0, "initial_scale_power": 16, "loss_scale_window": 1000, "hysteresis": 2,
                    "consecutive_hysteresis": false, "min_loss_scale": 1 },
          "optimizer": { "type": "SGD", "params": { "lr": "auto", "momentum": 0.9, "dampening": 0, "nesterov": true, "weight_decay": "auto" } },
          "scheduler": { "type": "OneCycle", "params": { "cycle_min_lr": 0.0001, "cycle_max_lr": 0.01, "decay_lr_rate": 0.1,
                         "cycle_first_step_size": 20, "cycle_second_step_size": 20, "cycle_first_stair_count": 2, "cycle_second_stair_count": 2,
                         "decay_step_size": 5, "cycle_momentum": true, "cycle_min_mom": 0.8, "cycle_max_mom": 0.9, "decay_mom_rate": 0.01 } }
        }
        """,
        """
        {
          "train_batch_size": 64, "gradient_accumulation_steps": 4, // a comment, and a trailing comma below
          "fp16": { "enabled": true, "loss_scale": 128 },
          "optimizer": { "type": "Adam", "params": { "lr": 3e-4, "adam_w_mode": false, "torch_adam": true } },
          "scheduler": { "type": "WarmupCosineLR", "params": { "warmup_min_ratio": 0.01, "warmup_num_steps": 5, "cos_min_ratio": 0.001,
                         "total_num_steps": 50 } },
        }
        """,
        """
        { "train_micro_batch_size_per_gpu": 16, "scheduler": { "type": "WarmupLR", "params": { "warmup_min_lr": 0, "warmup_max_lr": 0.01,
          "warmup_num_steps": 100, "warmup_type": "log" } }, "zero_optimization": { "stage": 0 } }
        """,
    };

    [TestMethod]
    public void DeepSpeedConfigRefusesDamagedFilesNamingThem()
    {
        string path = _folder!.Combine("ds_config.json");
        Fuzz("ds_config", DeepSpeedCases, 5000, random =>
        {
            string text = Mutations.Json(DeepSpeedSeeds[random.Next(DeepSpeedSeeds.Length)], random);
            byte[] input = Encoding.UTF8.GetBytes(text);
            File.WriteAllBytes(path, input);
            int worldSize = 1 + random.Next(4);
            return (input, () =>
            {
                var options = DeepSpeedOptions.FromDeepSpeedConfig(path);
                // What the engine makes of a config that reads: resolved for some world size, the schedule's rates finite.
                var config = EngineConfiguration.Resolve(nameof(DeepSpeedOptions), options, TrainerValues.AdamW(8), TrainerValues.AdamW(8), worldSize, null);
                // As ZeroEngine.Initialize, which refuses a decaying schedule without its length (the trainers fill it).
                if (config.Settings.Scheduler is { } schedule and not (WarmupDecayLR { TotalNumSteps: null } or WarmupCosineLR { TotalNumSteps: null }))
                {
                    schedule.Validate("scheduler.");
                    foreach (long step in new long[] { 0, 1, 7, 100, 1 << 20, long.MaxValue / 2 })
                    {
                        double rate = schedule.LearningRate(step, config.Settings.Optimizer.LearningRate);
                        if (!double.IsFinite(rate))
                            throw new InvalidOperationException($"{schedule.GetType().Name} gives learning rate {rate} at step {step}.");
                    }
                }
            });
        }, error => error is InvalidDataException && error.Message.Contains(path) || error is ArgumentException);
    }

    /// <summary>
    /// Runs <paramref name="cases"/> cases; case i draws everything from Random(seed + i). Each must finish within
    /// <paramref name="timeout"/> (<see cref="CaseTimeout"/>), allocate (managed, and native by the process's peak
    /// resident memory and malloc's count) at most 64 MB + 64 x its input's length, and succeed or throw an exception
    /// <paramref name="allowed"/> accepts. A case that hangs ends the run: it may still hold the files of the next.
    /// </summary>
    private static void Fuzz(string reader, int cases, int seed, Func<Random, (byte[] Input, Action Run)> makeCase, Func<Exception, bool> allowed,
        TimeSpan? timeout = null)
    {
        var failures = new List<string>();
        var outcomes = new Dictionary<string, int>();
        long mostManaged = 0, mostNative = 0;
        var clock = Stopwatch.StartNew();
        cases *= Scale;
        for (int i = 0; i < cases && failures.Count < 20; i++)
        {
            var (input, run) = makeCase(new Random(seed + i));
            long budget = (64L << 20) + 64L * input.Length;
            Exception? error = null;
            long allocated = 0;
            var memoryBefore = PeakMemory.Reset();
            var task = Task.Factory.StartNew(() =>
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                try
                {
                    run();
                }
                catch (Exception e)
                {
                    error = e;
                }
                allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            }, TaskCreationOptions.LongRunning);
            bool finished = PeakMemory.Wait(task, timeout ?? CaseTimeout, out var peak);
            long grown = Math.Max(peak.Resident - memoryBefore.Resident, peak.Heap - memoryBefore.Heap);
            (mostManaged, mostNative) = (Math.Max(mostManaged, allocated), Math.Max(mostNative, grown));
            string? failure = null;
            if (!finished)
                failure = $"no result after {(timeout ?? CaseTimeout).TotalSeconds} s";
            else if (allocated > budget)
                failure = $"allocated {allocated} managed bytes for a {input.Length}-byte input";
            else if (grown > budget)
                failure = $"native memory grew by {grown} bytes for a {input.Length}-byte input";
            else if (error is not null && !allowed(error))
                failure = $"threw {Describe(error)}";
            string outcome = !finished ? "hang" : error is null ? "success" : (ThrownByMlNet(Innermost(error)) ? "ML.NET's " : "") + Innermost(error).GetType().Name;
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            if (failure is not null)
            {
                string saved = Path.Combine(Path.GetTempPath(), "zero-fuzz-failures", $"{reader}-{seed + i}.bin");
                Directory.CreateDirectory(Path.GetDirectoryName(saved)!);
                File.WriteAllBytes(saved, input);
                failures.Add($"{reader} case {i} (Random({seed + i}), saved as {saved}): {failure}");
            }
            if (!finished)
                break;
        }
        clock.Stop();
        Console.WriteLine($"{reader}: {outcomes.Values.Sum()} cases in {clock.Elapsed.TotalSeconds:F1} s; most allocated by a case: " +
            $"{mostManaged >> 10} KB managed, {mostNative >> 10} KB native; outcomes: " +
            string.Join(", ", outcomes.OrderByDescending(o => o.Value).Select(o => $"{o.Key} {o.Value}")));
        if (failures.Count > 0)
            Assert.Fail($"{failures.Count} case(s) failed:\n" + string.Join("\n", failures));
    }

    // The harness itself: each kind of failure it looks for is reported.
    [TestMethod]
    public void TheHarnessReportsHangsLargeAllocationsAndOtherExceptions()
    {
        TorchRuntime.EnsureLoaded();
        (string Expected, Action Run, TimeSpan? Timeout)[] faults =
        {
            ("no result after 0.2 s", () => Thread.Sleep(1000), TimeSpan.FromSeconds(0.2)),
            ("managed bytes for a 16-byte input", () => GC.KeepAlive(new byte[100 << 20]), null),
            // 100 MB of native tensor memory, written so that it is resident (when its pages are new): invisible to the GC's count.
            ("native memory grew by", () => { using var tensor = ones(25L << 20); }, null),
            ("threw [NullReferenceException", () => throw new NullReferenceException(), null),
        };
        foreach (var (expected, run, timeout) in faults)
        {
            var error = Assert.ThrowsExactly<AssertFailedException>(() =>
                Fuzz("harness", 1, 0, _ => (new byte[16], run), _ => false, timeout));
            StringAssert.Contains(error.Message, expected);
        }
        Fuzz("harness", 1, 0, _ => (new byte[16], () => throw new InvalidDataException()), e => e is InvalidDataException);
    }

    // ML.NET calls loaders through reflection and wraps what they throw, once per level of the model: in
    // TargetInvocationException, and in InvalidOperationException("Error during class instantiation").
    private static Exception Innermost(Exception error)
    {
        while (error is TargetInvocationException or InvalidOperationException { Message: "Error during class instantiation" } && error.InnerException is { } inner)
            error = inner;
        return error;
    }

    // ML.NET's code threw it, with no frame of this library between the throw and the test.
    private static bool ThrownByMlNet(Exception error)
    {
        var frames = (error.StackTrace ?? "").Split('\n').Select(frame => frame.TrimStart()).ToList();
        bool Library(string frame) => frame.StartsWith("at Microsoft.ML.Zero.", StringComparison.Ordinal) && !frame.StartsWith("at Microsoft.ML.Zero.Tests.", StringComparison.Ordinal);
        return frames.Any(frame => frame.StartsWith("at Microsoft.ML.", StringComparison.Ordinal) && !frame.StartsWith("at Microsoft.ML.Zero.", StringComparison.Ordinal))
            && !frames.Any(Library);
    }

    private static string Describe(Exception error)
    {
        string chain = "";
        for (var e = error; e is not null; e = e.InnerException)
            chain += $"[{e.GetType().Name}: {e.Message[..Math.Min(200, e.Message.Length)]}] ";
        var innermost = Innermost(error);
        string frames = string.Join(" <- ", (innermost.StackTrace ?? "").Split('\n').Take(4).Select(line => line.Trim()));
        return $"{chain} at {frames}";
    }

    // The process's peak native memory over a case, two ways. Resident size: the kernel's high-water mark (VmHWM) sees
    // every page, but only where clear_refs can reset it (some sandboxes have no clear_refs, or ignore it), so the
    // waiting thread also samples the current size every millisecond. And glibc's count of the bytes malloc has handed
    // out (mallinfo2): the library keeps freed memory in the heap (TorchRuntime.KeepFreedMemory), so after earlier
    // tests a new tensor reuses resident pages and only malloc's count shows it. 100 MB take far longer than a
    // millisecond to write.
    private static class PeakMemory
    {
        private static readonly bool OnLinux = OperatingSystem.IsLinux() && File.Exists("/proc/self/status");
        private static readonly bool HasMallinfo2 = OnLinux && CanCallMallinfo2();
        private static bool markWasReset;

        /// <summary>Resets the high-water mark where the kernel allows it; returns the sizes now.</summary>
        public static (long Resident, long Heap) Reset()
        {
            try
            {
                if (OnLinux && File.Exists("/proc/self/clear_refs"))
                    File.WriteAllText("/proc/self/clear_refs", "5");
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
            long resident = Resident();
            markWasReset = OnLinux && Status("VmHWM:") <= resident + (8L << 20);
            return (resident, Heap());
        }

        /// <summary>Waits for <paramref name="task"/> up to <paramref name="timeout"/>, sampling the sizes.</summary>
        public static bool Wait(Task task, TimeSpan timeout, out (long Resident, long Heap) peak)
        {
            var clock = Stopwatch.StartNew();
            (long resident, long heap) = (Resident(), Heap());
            bool finished;
            while (!(finished = task.Wait(1)) && clock.Elapsed < timeout)
                (resident, heap) = (Math.Max(resident, Resident()), Math.Max(heap, Heap()));
            // The high-water mark counts only if the reset took: otherwise it is some earlier test's peak.
            peak = (Math.Max(resident, markWasReset ? Status("VmHWM:") : 0), heap);
            return finished;
        }

        private static long Resident() => OnLinux ? Status("VmRSS:") : Environment.WorkingSet;

        // Bytes in use from malloc: small blocks (uordblks) and mmapped ones (hblkhd); 0 without glibc.
        private static long Heap()
        {
            if (!HasMallinfo2)
                return 0;
            var info = Mallinfo2();
            return (long)(info.Uordblks + info.Hblkhd);
        }

        private static bool CanCallMallinfo2()
        {
            try
            {
                Mallinfo2();
                return true;
            }
            catch (EntryPointNotFoundException) { return false; }
            catch (DllNotFoundException) { return false; }
        }

        private static long Status(string key)
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(key, StringComparison.Ordinal))
                    return long.Parse(line[key.Length..].Trim().Split(' ')[0]) * 1024;
            return 0;
        }

        [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
        private struct MallocInfo
        {
            public nuint Arena, Ordblks, Smblks, Hblks, Hblkhd, Usmblks, Fsmblks, Uordblks, Fordblks, Keepcost;
        }

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mallinfo2")]
        private static extern MallocInfo Mallinfo2();
    }
}

/// <summary>A case that ran without an exception of its own but broke what the test expects of a success.</summary>
internal sealed class FuzzOracleException(string message, Exception? inner = null) : Exception(message, inner);
