using System.Text.Json;
using System.Diagnostics;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Engine;
using Microsoft.ML.Zero.Monitoring;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.Loop;

/// <summary>
/// One rank's epochs: read the rank's shard, then one engine step per window of <c>GradientAccumulationSteps</c>
/// micro-batches. The last window of an epoch may be shorter; every rank agrees on it, since the windows come from the
/// shared shard plan.
/// </summary>
internal sealed class ShardedTraining
{
    private readonly long _rowCount;
    private readonly BatchSizes _batch;
    private readonly int _epochs;
    private readonly int _seed;
    private readonly EngineSettings _settings;

    public ShardedTraining(long rowCount, BatchSizes batch, int epochs, int seed, EngineSettings settings)
    {
        _rowCount = rowCount;
        _batch = batch;
        _epochs = epochs;
        _seed = seed;
        _settings = settings;
    }

    /// <summary>
    /// The per-rank training loop for <paramref name="rowCount"/> rows, logging through <paramref name="log"/> and reporting
    /// to the progress bar and metrics files of the process that holds rank 0 (<paramref name="mainProcess"/>);
    /// <paramref name="validation"/> scores each rank's share of the validation set when <see cref="RunValues.Evaluation"/> says.
    /// </summary>
    public static ShardedTraining Create(EngineConfiguration config, long rowCount, RunValues run, bool mainProcess, Action<string> log,
        IValidation? validation = null, Func<bool>? cancellationRequested = null, string labelValues = "", LengthGroupedOrder? lengthGrouping = null,
        string lossSettings = "") =>
        new(rowCount, config.Batch, run.MaxEpoch, run.Seed, config.Settings)
        {
            LengthGrouping = lengthGrouping,
            LabelValues = labelValues,
            Validation = validation,
            Evaluation = run.Evaluation,
            LossSettings = lossSettings,
            CancellationRequested = cancellationRequested,
            Monitors = TrainingMonitors.Create(run.Progress, mainProcess),
            MetricWriters = () => MetricNames.Writers(config.TensorBoard, config.CsvMonitor),
            Log = log,
            StepsPerPrint = config.StepsPerPrint,
            WallClockBreakdown = config.WallClockBreakdown,
            InputPerRank = run.Sharding == ZeroDataSharding.InputPerRank,
            Checkpoints = run.CheckpointDirectory is { } directory ? new CheckpointStore(directory, run.KeepCheckpoints) : null,
            CheckpointEverySteps = run.CheckpointEverySteps,
        };

    /// <summary>
    /// Whether the caller asked training to stop; asked on every rank before each optimizer step, and the ranks agree
    /// on the answer, so all stop at the same step.
    /// </summary>
    public Func<bool>? CancellationRequested { get; init; }

    /// <summary>The label's values in key order, compared across ranks: with per-rank inputs one key could mean another class.</summary>
    public string LabelValues { get; init; } = "";

    /// <summary>Scores every rank's share of the validation set with its replica; null without a validation set.</summary>
    public IValidation? Validation { get; init; }

    /// <summary>When <see cref="Validation"/> scores, which metric names the best model, and when to stop early.</summary>
    public EvaluationSettings Evaluation { get; init; } = EvaluationSettings.EveryEpoch;

    /// <summary>The loss's class weights and label smoothing as the options give them, compared across ranks.</summary>
    public string LossSettings { get; init; } = "";

    /// <summary>What rank 0 reports every step and epoch to (the progress bar); rank 0 ends them when training ends.</summary>
    public IReadOnlyList<ITrainingMonitor> Monitors { get; init; } = Array.Empty<ITrainingMonitor>();

    /// <summary>Makes rank 0's metric files (csv_monitor, tensorboard), which its engine writes every step.</summary>
    public Func<List<IMetricWriter>>? MetricWriters { get; init; }

    /// <summary>Rank 0's progress lines, every <see cref="StepsPerPrint"/> optimizer steps.</summary>
    public Action<string>? Log { get; init; }

    public int StepsPerPrint { get; init; } = 10;

    /// <summary>Batches of rows of about the same length (group_by_length), or null for batches as the rows come shuffled.</summary>
    public LengthGroupedOrder? LengthGrouping { get; init; }

    /// <summary>Each rank's input is its own shard, rather than the same data split by position.</summary>
    public bool InputPerRank { get; init; }

    /// <summary>Where checkpoints are written and resumed from, or null.</summary>
    public CheckpointStore? Checkpoints { get; init; }

    /// <summary>Write a checkpoint every this many optimizer steps (skipped ones included); 0 writes none.</summary>
    public int CheckpointEverySteps { get; init; }

    /// <summary>Adds the forward/backward/all-reduce/step times to each progress line.</summary>
    public bool WallClockBreakdown { get; init; }

    /// <summary>
    /// Trains <paramref name="model"/>, resuming from the latest checkpoint if there is one; <paramref name="readEpoch"/>
    /// reads the listed rows (positions in the data). <paramref name="dropoutGenerator"/> is this rank's random stream,
    /// saved and restored with checkpoints.
    /// </summary>
    public void Run(nn.Module model, ICommunicator communicator, Func<int[], IEpochShard> readEpoch, Generator? dropoutGenerator = null)
    {
        try
        {
            Train(model, communicator, readEpoch, dropoutGenerator);
        }
        finally
        {
            if (communicator.Rank == 0)
                foreach (var monitor in Monitors)
                    monitor.Dispose();
        }
    }

    private void Train(nn.Module model, ICommunicator communicator, Func<int[], IEpochShard> readEpoch, Generator? dropoutGenerator)
    {
        AgreeOnRun(communicator);
        var plan = AgreeOnPlan(communicator);
        int accumulation = _batch.GradientAccumulationSteps;
        int stepsPerEpoch = (plan.StepsPerEpoch + accumulation - 1) / accumulation;
        var settings = _settings with { Scheduler = _settings.Scheduler?.Resolve((long)stepsPerEpoch * _epochs) };
        bool reports = communicator.Rank == 0;
        if (reports)
            Log?.Invoke($"{plan.RowCount} training rows over {plan.WorldSize} rank(s)" +
                (InputPerRank ? $" (shards of {string.Join(", ", plan.ShardSizes)} rows)" : "") + $": {stepsPerEpoch} optimizer steps per epoch" +
                (settings.Scheduler is { } schedule ? $", learning rate with {schedule.Describe()}." : "."));
        if (reports && plan.Grouping is not null)
            Log?.Invoke(plan.DescribeGrouping());
        model.train();
        using var engine = new ZeroEngine(model, communicator, settings, _batch, reports ? MetricWriters?.Invoke() : null);
        if (reports && engine.Core.GradientTransport is { } transport)
            Log?.Invoke($"Gradients are all-reduced {transport}.");
        using var evaluator = Validation is null || Evaluation.Strategy == ZeroEvaluationStrategy.No ? null : new Evaluator(Validation, Evaluation);
        if (reports && evaluator is not null)
            Log?.Invoke(Evaluation.Describe());
        var (startEpoch, startStep, resumedLoss) = Resume(engine, communicator, plan, stepsPerEpoch, dropoutGenerator, evaluator?.Best);
        bool stopped = evaluator?.Best.PatienceExhausted == true;
        long totalSteps = (long)stepsPerEpoch * _epochs, stepsTaken = (long)startEpoch * stepsPerEpoch + startStep;
        if (reports)
            foreach (var monitor in Monitors)
                monitor.Start(stepsTaken, totalSteps);
        var sinceStart = Stopwatch.StartNew();
        long samplesAtStart = engine.GlobalSamples;
        var sincePrint = Stopwatch.StartNew();
        long rowsSincePrint = 0;
        for (int epoch = startEpoch; epoch < _epochs && !stopped; epoch++)
        {
            var shard = readEpoch(plan.RowsForEpoch(epoch));
            if (reports && plan.Grouping is not null)
                Log?.Invoke(plan.DescribePadding(epoch));
            double lossTotal = epoch == startEpoch ? resumedLoss : 0;
            ValidationMetrics? epochMetrics = null;
            int step = epoch == startEpoch ? startStep : 0;
            for (; step < stepsPerEpoch && !stopped; step++)
            {
                AgreeBeforeStep(engine, communicator, plan, dropoutGenerator, epoch, step, lossTotal, evaluator?.Best);
                var result = TakeStep(engine, plan, shard, step * accumulation, Math.Min((step + 1) * accumulation, plan.StepsPerEpoch), out int globalRows);
                long samples = engine.GlobalSamples;
                lossTotal += result.Loss * globalRows;
                rowsSincePrint += globalRows;
                stepsTaken++;
                if (reports && Monitors.Count > 0)
                {
                    var record = new StepRecord(epoch + 1, _epochs, step + 1, stepsPerEpoch, stepsTaken, totalSteps, samples, result.Loss, result.LearningRate,
                        _settings.Precision == ZeroPrecision.Fp16 ? engine.LossScale : null, result.Skipped, (samples - samplesAtStart) / sinceStart.Elapsed.TotalSeconds);
                    foreach (var monitor in Monitors)
                        monitor.StepTaken(record);
                }
                long taken = engine.GlobalStep + engine.SkippedSteps;
                if (reports && taken % StepsPerPrint == 0)
                {
                    Log?.Invoke(Progress(epoch, step, stepsPerEpoch, result, engine, rowsSincePrint / sincePrint.Elapsed.TotalSeconds));
                    engine.Timings.Reset();
                    sincePrint.Restart();
                    rowsSincePrint = 0;
                }
                bool epochDone = step + 1 == stepsPerEpoch;
                // Evaluated before the checkpoint, so that a run resumed from it carries this evaluation.
                if (evaluator is not null && Evaluation.IsDue(taken, epochDone, epochDone && epoch + 1 == _epochs))
                {
                    // Evaluated every epoch, the epoch's line carries the metrics.
                    bool byEpoch = Evaluation.Strategy == ZeroEvaluationStrategy.Epoch;
                    var metrics = Evaluate(evaluator, model, communicator, engine, taken, epoch, step, stepsPerEpoch, logged: !byEpoch);
                    epochMetrics = byEpoch ? metrics : null;
                    stopped = evaluator.Best.PatienceExhausted;
                }
                if (Checkpoints is not null && CheckpointEverySteps > 0 && taken % CheckpointEverySteps == 0)
                    Save(engine, communicator, plan, dropoutGenerator, epochDone ? epoch + 1 : epoch, epochDone ? 0 : step + 1, epochDone ? 0 : lossTotal, evaluator?.Best);
            }
            if (reports)
            {
                var record = new EpochRecord(epoch + 1, _epochs, engine.GlobalSamples, lossTotal / plan.RowsInSteps(step * accumulation), epochMetrics);
                Log?.Invoke(record.Describe());
                engine.WriteMetrics(MetricNames.Of(record));
                foreach (var monitor in Monitors)
                    monitor.EpochCompleted(record);
            }
        }
        if (evaluator is not null)
            ReturnToBest(evaluator.Best, engine, reports, stopped);
        engine.RestoreFullPrecision();
        engine.VerifyReplicasMatch();
        model.eval();
    }

    // Before each step's first collective every rank says whether it was asked to stop, and which step it is about to
    // take: the ranks stop together, and ranks that drifted apart (which under MPI could otherwise meet in the wrong
    // collective) are an error naming them. With checkpoints on, a cancelled run saves the position reached first, so
    // a later Fit resumes from it.
    private void AgreeBeforeStep(ZeroEngine engine, ICommunicator communicator, ShardPlan plan, Generator? generator, int epoch, int step, double lossTotal,
        BestModel? best)
    {
        long taken = engine.GlobalStep + engine.SkippedSteps;
        var votes = communicator.AllGather(taken << 1 | (CancellationRequested?.Invoke() == true ? 1L : 0));
        var drifted = Enumerable.Range(0, votes.Length).Where(rank => votes[rank] >> 1 != votes[0] >> 1).ToList();
        if (drifted.Count > 0)
            throw new ZeroCommunicationException(communicator.Rank, $"The ranks are at different optimizer steps: rank 0 at step {(votes[0] >> 1) + 1}, " +
                string.Join(", ", drifted.Select(rank => $"rank {rank} at step {(votes[rank] >> 1) + 1}")) + ".");
        if (votes.All(vote => (vote & 1) == 0))
            return;
        string saved = "";
        if (Checkpoints is not null)
        {
            Save(engine, communicator, plan, generator, epoch, step, lossTotal, best);
            saved = $" Checkpoint {CheckpointStore.StepTag(taken)} in {Checkpoints.Directory} holds the run so far: a Fit with the same CheckpointDirectory resumes from it.";
        }
        throw new OperationCanceledException($"Training was cancelled before optimizer step {taken + 1}.{saved}");
    }

    // One optimizer step over the window's micro-batches (positions first..last of the rank's epoch order).
    private static ZeroStepResult TakeStep(ZeroEngine engine, ShardPlan plan, IEpochShard shard, int first, int last, out int globalRows)
    {
        var microBatches = new Func<Tensor?>[last - first];
        globalRows = 0;
        for (int micro = first; micro < last; micro++)
        {
            var (start, count) = plan.MicroBatch(micro, shard.Count);
            microBatches[micro - first] = () => count == 0 ? null : shard.LossSum(start, count);
            globalRows += plan.GlobalRowsInStep(micro);
        }
        return engine.Step(microBatches, globalRows);
    }

    private void Save(ZeroEngine engine, ICommunicator communicator, ShardPlan plan, Generator? generator, int epoch, int stepInEpoch, double lossTotal, BestModel? best)
    {
        long step = engine.GlobalStep + engine.SkippedSteps;
        engine.SaveCheckpoint(Checkpoints!, CheckpointStore.StepTag(step), folder =>
        {
            if (communicator.Rank == 0)
                best?.WriteWeights(folder);
            if (generator is null)
                return;
            using var state = generator.get_state();
            File.WriteAllBytes(Path.Combine(folder, CheckpointStore.RngFileName(communicator.Rank)), state.bytes.ToArray());
        }, state =>
        {
            state = state with
            {
                Epoch = epoch, StepInEpoch = stepInEpoch, EpochLossTotal = lossTotal, RowCount = plan.RowCount, Seed = _seed,
                GroupByLengthWindow = LengthGrouping?.WindowBatches ?? 0,
            };
            return best?.Describe(state) ?? state;
        }, null);
        if (communicator.Rank == 0)
            Log?.Invoke($"Saved checkpoint global_step{step} in {Checkpoints!.Directory}.");
    }

    // Loads the latest checkpoint, if any, after checking it belongs to this run: the same model, data, seed and
    // global batch (so each step sees the same rows); the number of ranks may differ.
    private (int Epoch, int Step, double LossTotal) Resume(ZeroEngine engine, ICommunicator communicator, ShardPlan plan, int stepsPerEpoch, Generator? generator,
        BestModel? best)
    {
        if (Checkpoints?.Latest() is not { } folder)
            return (0, 0, 0);
        var state = CheckpointStore.ReadState(folder);
        void Require(bool same, string what, object saved, object now)
        {
            if (!same)
                throw new InvalidOperationException($"Checkpoint '{folder}' was written with {what} {saved}; this run has {now}. " +
                    "Resuming continues the same run: use a new CheckpointDirectory to start another.");
        }
        Require(state.ParameterCount == engine.Core.ParameterCount, "a model of", state.ParameterCount + " trainable values", engine.Core.ParameterCount);
        Require(state.RowCount == plan.RowCount, "training rows", state.RowCount, plan.RowCount);
        Require(state.Seed == _seed, "seed", state.Seed, _seed);
        // Grouping by length orders the epoch's rows differently: the rest of the epoch would repeat some rows and skip others.
        Require(state.GroupByLengthWindow == (LengthGrouping?.WindowBatches ?? 0), "GroupByLength",
            GroupingName(state.GroupByLengthWindow), GroupingName(LengthGrouping?.WindowBatches ?? 0));
        // The position must lie inside this run: an epoch past the last, or a step past its epoch's, was not written by it.
        if (state.Epoch > _epochs || (state.Epoch == _epochs && state.StepInEpoch > 0) || state.StepInEpoch >= stepsPerEpoch || !double.IsFinite(state.EpochLossTotal))
            throw new InvalidDataException($"Checkpoint '{folder}' stands at epoch {state.Epoch}, step {state.StepInEpoch} (loss total {state.EpochLossTotal}); " +
                $"this run has {_epochs} epoch(s) of {stepsPerEpoch} step(s) and a finite loss total.");
        Require(state.Optimizer == _settings.Optimizer.Kind.ToString(), "optimizer", state.Optimizer, _settings.Optimizer.Kind);
        Require(state.TrainBatchSize == _batch.TrainBatchSize, "train_batch_size",
            $"{state.TrainBatchSize} ({state.WorldSize} rank(s) x {state.TrainMicroBatchSizePerGpu} x {state.GradientAccumulationSteps})",
            $"{_batch.TrainBatchSize} ({communicator.WorldSize} rank(s) x {_batch.TrainMicroBatchSizePerGpu} x {_batch.GradientAccumulationSteps}); the global batch must stay the same");
        engine.LoadCheckpoint(folder, state);
        best?.Resume(state, folder, engine.Core.ParameterCount);
        string rng = Path.Combine(folder, CheckpointStore.RngFileName(communicator.Rank));
        if (generator is not null && File.Exists(rng))
        {
            using var saved = tensor(File.ReadAllBytes(rng));
            generator.set_state(saved);
        }
        if (communicator.Rank == 0)
            Log?.Invoke($"Resuming from {folder}: epoch {state.Epoch + 1}, step {state.StepInEpoch} of it, global step {state.GlobalStep}" +
                (state.WorldSize != communicator.WorldSize ? $" (written by {state.WorldSize} rank(s), now {communicator.WorldSize})" : "") +
                // The fp32 master weights resume in any precision; precision Auto may pick another on another kind of CPU.
                (state.Precision != _settings.Precision.ToString() ? $" (written in {state.Precision}, now {_settings.Precision}: the steps from here differ in rounding)" : "") + ".");
        return (state.Epoch, state.StepInEpoch, state.EpochLossTotal);
    }

    private static string GroupingName(int windowBatches) => windowBatches == 0 ? "off" : $"on (GroupByLengthWindow {windowBatches})";

    // Processes started separately can run different settings (a seed per rank, labels keyed per process, a checkpoint
    // folder only one machine sees), which would train silently wrong: every rank compares one hash of the run, and
    // only when they differ the hash of each setting, to name it.
    private void AgreeOnRun(ICommunicator communicator)
    {
        var optimizer = _settings.Optimizer;
        var run = new (string Setting, string Value)[]
        {
            ("Seed", _seed.ToString()),
            ("MaxEpoch", _epochs.ToString()),
            ("the precision", _settings.Precision.ToString()),
            ("the batch sizes", $"{_batch.TrainBatchSize} = {_batch.TrainMicroBatchSizePerGpu} x {_batch.GradientAccumulationSteps} x ranks"),
            ("the optimizer", $"{optimizer.Kind} {optimizer.LearningRate:R} {optimizer.Beta1:R} {optimizer.Beta2:R} {optimizer.Epsilon:R} {optimizer.WeightDecay:R} {optimizer.Momentum:R}"),
            ("the learning-rate schedule", _settings.Scheduler is { } schedule ? schedule.GetType().Name + JsonSerializer.Serialize(schedule, schedule.GetType(), ScheduleJson) : "none"),
            ("the label's values", LabelValues),
            // With one data set every rank must group the same lengths alike; with per-rank inputs each groups its own.
            ("GroupByLength", LengthGrouping is not { } grouping ? "off" : $"window {grouping.WindowBatches}" +
                (InputPerRank ? "" : $", row lengths {Fnv1a.Hash<int>(grouping.RowLengths):x16}")),
            ("the loss", LossSettings),
            ("the checkpoint resumed from", Checkpoints?.Latest() is { } folder ? Path.GetFileName(folder) : "none"),
        };
        long Hash(string value) => (long)Fnv1a.Hash(value.AsSpan());
        var whole = communicator.AllGather(Hash(string.Join("\n", run.Select(r => r.Value))));
        if (whole.All(hash => hash == whole[0]))
            return;
        var differing = new List<string>();
        foreach (var (setting, value) in run)
        {
            var hashes = communicator.AllGather(Hash(value));
            var ranks = Enumerable.Range(0, hashes.Length).Where(rank => hashes[rank] != hashes[0]).ToList();
            if (ranks.Count > 0)
                differing.Add($"The ranks differ in {setting}: rank(s) {string.Join(", ", ranks)} differ from rank 0 (rank {communicator.Rank} has {value})");
        }
        throw new InvalidOperationException(string.Join("; ", differing) + ". Every rank must run the same settings, labels and checkpoint: " +
            "give every process the same options and data schema, and a checkpoint folder that every process reaches.");
    }

    // DeepSpeed's schedules keep their settings in public fields.
    private static readonly JsonSerializerOptions ScheduleJson = new() { IncludeFields = true };

    /// <summary>
    /// The training set's rows per class, the same on every rank, for class weights drawn from them: with
    /// Sharding = InputPerRank each rank's input is its own shard and the counts are summed over the ranks; otherwise
    /// every rank reads the whole data and its own counts are already the set's.
    /// </summary>
    public long[] AgreeOnLabelCounts(ICommunicator communicator, long[] localCounts) =>
        InputPerRank ? localCounts.Select(count => communicator.AllGather(count).Sum()).ToArray() : localCounts;

    // The ranks score disjoint shares of the validation set at the same time, so none waits in a collective while
    // another scores it all (which a large set would make longer than the communication timeout); their sums give
    // exact metrics over every row.
    private ValidationMetrics Evaluate(Evaluator evaluator, nn.Module model, ICommunicator communicator, ZeroEngine engine, long taken, int epoch, int step,
        int stepsPerEpoch, bool logged)
    {
        var (metrics, isBest) = evaluator.Evaluate(model, communicator, engine.Core, taken);
        if (communicator.Rank != 0)
            return metrics;
        var record = new EvaluationRecord(epoch + 1, _epochs, step + 1, stepsPerEpoch, taken, engine.GlobalSamples, metrics, isBest);
        if (logged)
            Log?.Invoke(record.Describe());
        engine.WriteMetrics(MetricNames.Of(metrics));
        foreach (var monitor in Monitors)
            monitor.Evaluated(record);
        return metrics;
    }

    // Early stopping ends training at the step where patience ran out; LoadBestModelAtEnd then returns to the best
    // step's weights (the same on every rank), before the final replica check.
    private void ReturnToBest(BestModel best, ZeroEngine engine, bool reports, bool stopped)
    {
        long taken = engine.GlobalStep + engine.SkippedSteps;
        string metric = ValidationMetrics.LogName(Evaluation.MetricForBestModel);
        if (reports && stopped)
            Log?.Invoke(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"Early stopping after step {taken}: the validation {metric} has not improved by more than {Evaluation.EarlyStoppingThreshold:G4} in {best.EvaluationsWithoutImprovement} evaluation(s)."));
        if (best.Restore(engine.Core, taken) && reports)
            Log?.Invoke(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"Loaded the best model, from step {best.Step}: validation {metric} {best.Value:F4}."));
    }

    // Every rank learns every rank's row count before the first step, so all derive the same steps and batch sizes.
    private ShardPlan AgreeOnPlan(ICommunicator communicator)
    {
        var counts = communicator.AllGather(_rowCount);
        if (InputPerRank)
            return ShardPlan.PerRank(counts, communicator.Rank, _batch.TrainMicroBatchSizePerGpu, _seed, LengthGrouping, _batch.GradientAccumulationSteps);
        int differing = Array.FindIndex(counts, c => c != counts[0]);
        if (differing > 0)
            throw new InvalidOperationException(
                $"Rank {differing} reads {counts[differing]} training rows but rank 0 reads {counts[0]}: with Sharding = SplitRows every rank must read " +
                "the same data. Set Sharding = InputPerRank when each rank's input holds only its own rows.");
        return new ShardPlan(_rowCount, communicator.WorldSize, communicator.Rank, _batch.TrainMicroBatchSizePerGpu, _seed, LengthGrouping, _batch.GradientAccumulationSteps);
    }

    private string Progress(int epoch, int step, int stepsPerEpoch, ZeroStepResult result, ZeroEngine engine, double rowsPerSecond)
    {
        string line = $"Epoch {epoch + 1}/{_epochs}, step {step + 1}/{stepsPerEpoch}: loss {result.Loss:F4}, lr {result.LearningRate:G4}";
        if (_settings.Precision == ZeroPrecision.Fp16)
            line += $", loss scale {engine.LossScale:G}, skipped steps {engine.SkippedSteps}";
        line += $", {rowsPerSecond:F1} samples/s.";
        return WallClockBreakdown ? $"{line} Time: {engine.Timings}." : line;
    }
}
