using System.Text.Json;
using Microsoft.ML.Zero.Distributed;

namespace Microsoft.ML.Zero.Training;

/// <summary>
/// A checkpoint folder laid out as DeepSpeed's: one <c>global_step{N}</c> folder per checkpoint and a <c>latest</c>
/// file naming the newest. A checkpoint is written into <c>global_step{N}.partial</c>, flushed to disk and renamed
/// when complete, and <c>latest</c> is replaced the same way, so a run killed while saving (or a power cut) leaves the
/// previous checkpoint intact. A tag saved again keeps its old copy as <c>{tag}.replaced</c> until the new one is in
/// place, and <see cref="Latest"/> falls back to it.
/// </summary>
internal sealed class CheckpointStore
{
    public const string LatestFileName = "latest", StateFileName = "state.json", ConfigFileName = "config.json",
        WeightsFileName = "model_states.bin", OptimizerFileName = "optim_states.pt", FlatOptimizerFileName = "optim_states.bin";
    private const string TagPrefix = "global_step", PartialSuffix = ".partial", ReplacedSuffix = ".replaced", LatestTempFileName = LatestFileName + ".tmp";

    /// <summary>What state.json says of an optimizer the caller built.</summary>
    public const string CustomOptimizer = "custom";

    /// <summary>Throws unless <paramref name="tag"/> is a plain folder name that cannot reach outside the checkpoint folder.</summary>
    public static void RequireTag(string tag)
    {
        if (string.IsNullOrWhiteSpace(tag) || tag is "." or ".." or LatestFileName || Path.IsPathRooted(tag) || Path.GetFileName(tag) != tag
            || tag.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || tag.EndsWith(PartialSuffix, StringComparison.Ordinal) || tag.EndsWith(ReplacedSuffix, StringComparison.Ordinal))
            throw new ArgumentException($"Checkpoint tag '{tag}' must be a plain folder name (not '.', '..', '{LatestFileName}', a path, " +
                $"or ending in '{PartialSuffix}' or '{ReplacedSuffix}').", nameof(tag));
    }

    public CheckpointStore(string directory, int keep)
    {
        Directory = directory;
        Keep = keep;
    }

    public string Directory { get; }

    public int Keep { get; }

    /// <summary>The newest complete checkpoint's folder, or null when there is none.</summary>
    public string? Latest()
    {
        string latest = Path.Combine(Directory, LatestFileName);
        if (!File.Exists(latest))
            return null;
        string tag = File.ReadAllText(latest).Trim();
        RequireTag(tag);
        return Complete(tag) ?? throw new InvalidDataException($"Checkpoint folder '{Directory}': '{LatestFileName}' names '{tag}', which is missing or incomplete.");
    }

    // The folder of a complete checkpoint (one with its state.json) saved as tag; or its previous copy, when a crash
    // came while the tag was saved again, between moving the old folder aside and renaming the new one in.
    private string? Complete(string tag)
    {
        string folder = Path.Combine(Directory, tag);
        if (File.Exists(Path.Combine(folder, StateFileName)))
            return folder;
        return File.Exists(Path.Combine(folder + ReplacedSuffix, StateFileName)) ? folder + ReplacedSuffix : null;
    }

    /// <summary>DeepSpeed's default tag of the checkpoint of <paramref name="step"/>.</summary>
    public static string StepTag(long step) => TagPrefix + step;

    /// <summary>The folder that ranks write a checkpoint's files into before <see cref="Commit"/>.</summary>
    public string PartialFolder(string tag) => Path.Combine(Directory, tag + PartialSuffix);

    /// <summary>The folder of the checkpoint <paramref name="tag"/>, or of the latest when it is null; an error when missing.</summary>
    public string Folder(string? tag)
    {
        if (tag is null)
            return Latest() ?? throw new DirectoryNotFoundException($"Checkpoint folder '{Directory}' holds no '{LatestFileName}' file: nothing to load.");
        return Complete(tag) ?? throw new DirectoryNotFoundException($"Checkpoint '{tag}' in '{Directory}' is missing or incomplete (no {StateFileName}).");
    }

    /// <summary>Rank 0, once every rank has written: makes the partial folder the checkpoint, points latest at it, prunes old ones.</summary>
    public void Commit(string tag)
    {
        RequireTag(tag);
        string partial = PartialFolder(tag), folder = Path.Combine(Directory, tag), replaced = folder + ReplacedSuffix;
        // Every file on disk before the rename names them complete, then the rename before latest names it. Rank 0
        // flushes the other ranks' files too: on one host they share the page cache, and a shared file system has
        // them from the writer's close.
        foreach (string file in System.IO.Directory.GetFiles(partial, "*", SearchOption.AllDirectories))
            DurableFiles.SyncFile(file);
        DurableFiles.SyncFolder(partial);
        // A checkpoint saved again under its tag replaces the old one only once the new one is in place: a crash in
        // between leaves the old one as tag.replaced, which Latest falls back to. A .replaced beside its folder is
        // stale (the crash came after the new folder was in place); one without it is that fallback, kept until then.
        if (System.IO.Directory.Exists(folder))
        {
            if (System.IO.Directory.Exists(replaced))
                System.IO.Directory.Delete(replaced, recursive: true);
            System.IO.Directory.Move(folder, replaced);
        }
        System.IO.Directory.Move(partial, folder);
        DurableFiles.SyncFolder(Directory);
        string temp = Path.Combine(Directory, LatestTempFileName);
        File.WriteAllText(temp, tag);
        DurableFiles.SyncFile(temp);
        File.Move(temp, Path.Combine(Directory, LatestFileName), overwrite: true);
        DurableFiles.SyncFolder(Directory);
        if (System.IO.Directory.Exists(replaced))
            System.IO.Directory.Delete(replaced, recursive: true);
        var older = System.IO.Directory.GetDirectories(Directory, TagPrefix + "*")
            .Select(path => (Path: path, Step: long.TryParse(Path.GetFileName(path)[TagPrefix.Length..], out long s) ? s : -1))
            .Where(c => c.Step >= 0 && TagPrefix + c.Step != tag)
            .OrderByDescending(c => c.Step)
            .Skip(Keep - 1);
        foreach (var (path, _) in older)
            System.IO.Directory.Delete(path, recursive: true);
    }

    /// <summary>
    /// Writes checkpoint <paramref name="tag"/> from every rank: rank 0 makes the partial folder, every rank writes its
    /// own files (<paramref name="everyRank"/>), rank 0 the shared ones (<paramref name="rankZero"/>), and once all are
    /// done rank 0 commits it. Returns the checkpoint's folder.
    /// </summary>
    public string Write(ICommunicator communicator, string tag, Action<string>? everyRank, Action<string> rankZero)
    {
        RequireTag(tag);
        string partial = PartialFolder(tag);
        if (communicator.Rank == 0)
        {
            RemoveLeftovers();
            System.IO.Directory.CreateDirectory(partial);
        }
        communicator.Barrier();
        everyRank?.Invoke(partial);
        if (communicator.Rank == 0)
            rankZero(partial);
        communicator.Barrier();
        if (communicator.Rank == 0)
            Commit(tag);
        communicator.Barrier();
        return Path.Combine(Directory, tag);
    }

    // What an earlier save that crashed leaves: partial folders (this tag's included), latest.tmp, and a tag.replaced
    // whose tag folder is complete. A .replaced without its folder is kept: Latest may need it.
    private void RemoveLeftovers()
    {
        if (!System.IO.Directory.Exists(Directory))
            return;
        foreach (string partial in System.IO.Directory.GetDirectories(Directory, "*" + PartialSuffix))
            System.IO.Directory.Delete(partial, recursive: true);
        foreach (string replaced in System.IO.Directory.GetDirectories(Directory, "*" + ReplacedSuffix))
            if (File.Exists(Path.Combine(replaced[..^ReplacedSuffix.Length], StateFileName)))
                System.IO.Directory.Delete(replaced, recursive: true);
        File.Delete(Path.Combine(Directory, LatestTempFileName));
    }

    public static void WriteState(string folder, TrainingState state) =>
        File.WriteAllText(Path.Combine(folder, StateFileName), JsonSerializer.Serialize(state, new JsonSerializerOptions { WriteIndented = true }));

    /// <summary>The optimizer's state file <paramref name="fileName"/> in <paramref name="folder"/>; an error saying why when it is not there.</summary>
    public static string OptimizerStatePath(string folder, string fileName)
    {
        string path = Path.Combine(folder, fileName);
        if (File.Exists(path))
            return path;
        if (fileName == FlatOptimizerFileName && File.Exists(Path.Combine(folder, OptimizerFileName)))
            throw new InvalidDataException($"Checkpoint '{folder}' holds TorchSharp's optimizer state ('{OptimizerFileName}'), as earlier " +
                $"builds wrote for fp32 AdamW; the built-in AdamW now keeps its state in '{FlatOptimizerFileName}'. Resume it " +
                "with the build that wrote it, or start a new run from its weights.");
        throw new InvalidDataException($"Checkpoint '{folder}' has no '{fileName}': it was written with another precision or optimizer than this run's.");
    }

    /// <summary>The run's resolved engine settings, for people reading the checkpoint; resuming checks state.json.</summary>
    public static void WriteConfig(string folder, EngineSettings settings, BatchSizes batch)
    {
        var optimizer = settings.Optimizer;
        var config = new
        {
            train_batch_size = batch.TrainBatchSize,
            train_micro_batch_size_per_gpu = batch.TrainMicroBatchSizePerGpu,
            gradient_accumulation_steps = batch.GradientAccumulationSteps,
            precision = settings.Precision.ToString(),
            fp16 = settings.Precision == ZeroPrecision.Fp16 ? settings.LossScaling : null,
            gradient_clipping = settings.GradientClipping,
            prescale_gradients = settings.PrescaleGradients,
            gradient_predivide_factor = settings.GradientPredivideFactor,
            optimizer = settings.OptimizerFactory is not null ? (object)new { type = CustomOptimizer } : new
            {
                type = optimizer.Kind.ToString(),
                @params = new { lr = optimizer.LearningRate, betas = new[] { optimizer.Beta1, optimizer.Beta2 }, eps = optimizer.Epsilon,
                    weight_decay = optimizer.WeightDecay, momentum = optimizer.Momentum, dampening = optimizer.Dampening, nesterov = optimizer.Nesterov },
            },
            scheduler = settings.Scheduler is { } schedule ? new { type = schedule.GetType().Name, @params = (object)schedule } : null,
        };
        var options = new JsonSerializerOptions { WriteIndented = true, IncludeFields = true };
        options.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter());
        File.WriteAllText(Path.Combine(folder, ConfigFileName), JsonSerializer.Serialize(config, options));
    }

    public static TrainingState ReadState(string folder)
    {
        string path = Path.Combine(folder, StateFileName);
        TrainingState state;
        try
        {
            state = JsonSerializer.Deserialize<TrainingState>(File.ReadAllText(path)) ?? throw new InvalidDataException($"'{path}' is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Checkpoint state '{path}' is not valid: {e.Message}", e);
        }
        // A newer layout may keep its files differently: reading it as this one would resume a wrong run, not fail.
        if (state.FormatVersion != TrainingState.CurrentFormatVersion)
            throw new InvalidDataException($"Checkpoint state '{path}' has format version {state.FormatVersion}; this build of Microsoft.ML.Zero " +
                $"reads format version {TrainingState.CurrentFormatVersion}" +
                (state.FormatVersion > TrainingState.CurrentFormatVersion ? ". A newer Microsoft.ML.Zero wrote it: load it with that version." : "."));
        state.RequireInRange(path);
        return state;
    }

    public static string RngFileName(int rank) => $"rng_rank{rank}.bin";
}
