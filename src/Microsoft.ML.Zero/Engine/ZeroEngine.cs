using System.Diagnostics;
using System.Text.Json;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Distributed.Mpi;
using Microsoft.ML.Zero.Engine;
using Microsoft.ML.Zero.Monitoring;
using Microsoft.ML.Zero.Tensors;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero;

/// <summary>
/// DeepSpeed's training engine for any TorchSharp module, at ZeRO stage 0: <c>deepspeed.initialize</c> becomes
/// <see cref="Initialize"/>, then <see cref="Forward(Tensor)"/>, <see cref="Backward"/> and <see cref="Step()"/> every
/// micro-batch. Gradients accumulate until the accumulation boundary, where one all-reduce averages them over the ranks
/// and the optimizer steps identically everywhere, with the precision, loss scaling, clipping, optimizer and schedule of
/// the <see cref="DeepSpeedOptions"/>. Ranks are threads of this process (<see cref="Launch"/>) or processes under mpirun.
/// </summary>
public sealed class ZeroEngine : IDisposable
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(5);

    private readonly DataParallelEngine _engine;
    private readonly ICommunicator _communicator;
    private readonly ICommunicator? _ownedCommunicator;
    private readonly EngineSettings _settings;
    private readonly BatchSizes _batch;
    private bool? _boundary;
    private readonly IReadOnlyList<IMetricWriter> _metrics;

    /// <summary>
    /// An engine on <paramref name="communicator"/>'s rank. It owns <paramref name="metrics"/> (rank 0's metric files,
    /// written every optimizer step) and <paramref name="owned"/>, disposed with it.
    /// </summary>
    internal ZeroEngine(nn.Module module, ICommunicator communicator, EngineSettings settings, BatchSizes? batch = null,
        IReadOnlyList<IMetricWriter>? metrics = null, ICommunicator? owned = null)
    {
        Module = module;
        _communicator = communicator;
        _ownedCommunicator = owned;
        _settings = settings;
        _batch = batch ?? new BatchSizes(communicator.WorldSize, 1, 1);
        _metrics = metrics ?? Array.Empty<IMetricWriter>();
        try
        {
            _engine = new DataParallelEngine(module, communicator, settings);
        }
        catch
        {
            foreach (var writer in _metrics)
                writer.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs <paramref name="train"/> once per rank: on <paramref name="worldSize"/> threads of this process, or, when
    /// mpirun started the process, once as this process's rank (<paramref name="worldSize"/> must then be 1 or the job's
    /// size). Each rank builds its model (<see cref="ZeroRank.CreateModel"/>) and calls <see cref="Initialize"/>. A rank
    /// that fails stops the others; its exception is rethrown (under mpirun the job is aborted naming the rank).
    /// </summary>
    public static void Launch(int worldSize, Action<ZeroRank> train, TimeSpan? communicationTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        OptionCheck.Require(worldSize >= 1, nameof(worldSize), worldSize, "at least 1");
        TorchRuntime.EnsureLoaded();
        var layout = RankLayout.Resolve(worldSize, nameof(worldSize), communicationTimeout ?? DefaultTimeout, $"ZeroEngine.Launch's {nameof(communicationTimeout)}");
        layout.Guard(() =>
        {
            ZeroRank.Run(layout, train);
            return true;
        });
    }

    /// <summary>
    /// Wraps <paramref name="module"/> for data-parallel training on the calling rank (inside <see cref="Launch"/>; under
    /// mpirun without it; otherwise a single rank). Rank 0's weights are copied to every rank. The optimizer and schedule
    /// come from <paramref name="options"/> (AdamW, lr 1e-3, weight decay 0.01 when it names none) unless
    /// <paramref name="createOptimizer"/> builds one over the parameters the engine updates (the fp32 master weights in
    /// bf16/fp16) or <paramref name="schedule"/> is given.
    /// </summary>
    public static ZeroEngine Initialize(nn.Module module, DeepSpeedOptions? options = null,
        Func<IReadOnlyList<Parameter>, optim.Optimizer>? createOptimizer = null, LearningRateSchedule? schedule = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        TorchRuntime.EnsureLoaded();
        options ??= new DeepSpeedOptions();
        ICommunicator? owned = null;
        List<IMetricWriter>? metrics = null;
        var communicator = LaunchedRank.Communicator ?? MpiWorld() ?? (owned = new InProcessCommunicator(new InProcessGroup(1, DefaultTimeout), 0));
        try
        {
            int world = communicator.WorldSize;
            options.Validate(); // before the sizes are divided: gradient_accumulation_steps 0 would divide by zero
            int micro = options.TrainMicroBatchSizePerGpu ?? DefaultMicroBatch(options, world);
            var defaults = TrainerValues.AdamW(micro);
            var config = EngineConfiguration.Resolve(nameof(DeepSpeedOptions), options, defaults, defaults, world, null);
            // As DeepSpeed's engine logs its settings at initialize: rank 0's console, once per engine.
            if (communicator.Rank == 0 && config.Precision.Message is { } message)
                Console.WriteLine($"{(config.Precision.IsWarning ? "Warning: " : "")}Microsoft.ML.Zero: {message}");
            var scheduled = schedule ?? config.Settings.Scheduler;
            scheduled?.Validate("scheduler.");
            // The trainers fill a decaying schedule's length from their epochs; a loop the engine cannot see must name it.
            if (scheduled is WarmupDecayLR { TotalNumSteps: null } or WarmupCosineLR { TotalNumSteps: null })
                throw new ArgumentException($"{scheduled.GetType().Name}.TotalNumSteps (scheduler.params.total_num_steps) is not set; " +
                    "the engine cannot know how many optimizer steps the training loop takes. Set it.", nameof(schedule));
            if (scheduled is { TakesTrainerWarmup: true })
                throw new ArgumentException($"{scheduled.GetType().Name}.WarmupNumSteps (scheduler.params.warmup_num_steps) is \"auto\", which takes a trainer's " +
                    "warm-up share of its run; the engine cannot know how many optimizer steps the training loop takes. Set it.", nameof(schedule));
            var settings = config.Settings with { Scheduler = scheduled, OptimizerFactory = createOptimizer };
            // As DeepSpeed's engine: rank 0 writes the monitors' metrics every optimizer step, samples seen as the step.
            metrics = communicator.Rank == 0 ? MetricNames.Writers(config.TensorBoard, config.CsvMonitor) : null;
            return new ZeroEngine(module, communicator, settings, config.Batch, metrics, owned);
        }
        catch
        {
            foreach (var writer in metrics ?? new())
                writer.Dispose();
            owned?.Dispose();
            throw;
        }
    }

    // DeepSpeed's micro-batch when none is given: train_batch_size / (world x gradient_accumulation_steps), at least 1.
    // The product is taken in long, so that it cannot wrap to 0 or a negative divisor, and refused past int.
    private static int DefaultMicroBatch(DeepSpeedOptions options, int world)
    {
        int accumulation = options.GradientAccumulationSteps ?? 1;
        long rowsPerMicroBatch = (long)world * accumulation;
        if (rowsPerMicroBatch > int.MaxValue)
            throw new ArgumentException(
                $"gradient_accumulation_steps (DeepSpeedOptions.GradientAccumulationSteps) {accumulation} x world size {world} = {rowsPerMicroBatch}: " +
                $"even one row per micro-batch makes more than {int.MaxValue} rows per step (train_batch_size). Lower gradient_accumulation_steps.",
                nameof(options));
        return Math.Max(1, (int)((options.TrainBatchSize ?? world) / rowsPerMicroBatch));
    }

    // A process that a launcher started is its job's rank (an MPICH or torchrun launch is refused, as by the trainers).
    private static ICommunicator? MpiWorld()
    {
        if (MpiLaunchEnvironment.Detect() is not { } launch)
            return null;
        RankLayout.Resolve(1, "worldSize", DefaultTimeout, "the communication timeout");
        return MpiCommunicator.World(launch, DefaultTimeout);
    }

    /// <summary>The module being trained.</summary>
    public nn.Module Module { get; }

    /// <summary>This rank, from 0 to <see cref="WorldSize"/> - 1.</summary>
    public int Rank => _communicator.Rank;

    /// <summary>The number of ranks.</summary>
    public int WorldSize => _communicator.WorldSize;

    /// <summary>Optimizer steps taken, skipped ones not counted: the learning-rate schedule's position.</summary>
    public long GlobalStep => _engine.GlobalStep;

    /// <summary>Steps skipped because fp16 gradients overflowed.</summary>
    public long SkippedSteps => _engine.SkippedSteps;

    /// <summary>The fp16 loss scale (1 in fp32 and bf16).</summary>
    public double LossScale => _engine.LossScale;

    /// <summary>The learning rate the next optimizer step uses.</summary>
    public double LearningRate => _engine.CurrentLearningRate();

    /// <summary>Micro-batches whose gradients add up before each optimizer step [<c>gradient_accumulation_steps</c>].</summary>
    public int GradientAccumulationSteps => _batch.GradientAccumulationSteps;

    /// <summary>Rows per rank per micro-batch [<c>train_micro_batch_size_per_gpu</c>], as configured.</summary>
    public int TrainMicroBatchSizePerGpu => _batch.TrainMicroBatchSizePerGpu;

    /// <summary>Calls of <see cref="Step()"/> so far: micro-batches, boundaries included.</summary>
    public long MicroSteps { get; private set; }

    /// <summary>The last optimizer step's result, or null before the first.</summary>
    public ZeroStepResult? LastStep { get; private set; }

    /// <summary>
    /// True when the current micro-batch ends the accumulation window, so <see cref="Step()"/> will all-reduce and update:
    /// every <see cref="GradientAccumulationSteps"/>-th micro-batch, unless <see cref="SetGradientAccumulationBoundary"/> said otherwise.
    /// </summary>
    public bool IsGradientAccumulationBoundary => _boundary ?? (MicroSteps + 1) % _batch.GradientAccumulationSteps == 0;

    internal EngineTimings Timings => _engine.Timings;

    internal DataParallelEngine Core => _engine;

    /// <summary>
    /// Makes the current micro-batch end the accumulation window (or not), whatever the count says, until the next
    /// <see cref="Step()"/>; for windows of varying length, such as an epoch's last. Call it before the forward pass.
    /// </summary>
    public void SetGradientAccumulationBoundary(bool isBoundary) => _boundary = isBoundary;

    /// <summary>
    /// The module's forward pass on <paramref name="input"/>, for modules that take and return one tensor; a floating
    /// input is cast to the module's precision (bf16/fp16) first.
    /// </summary>
    public Tensor Forward(Tensor input) => Module is nn.Module<Tensor, Tensor> module
        ? Forward(() => module.call(InputPrecision.Match(module, input)))
        : throw new InvalidOperationException($"{Module.GetType().Name} does not take one tensor; call Forward(() => ...) with its own forward pass.");

    /// <summary>
    /// Runs a forward pass (<paramref name="forward"/>) as this micro-batch's: at the accumulation boundary with
    /// overlap_comm, its layers then signal during backward so gradient buckets leave early.
    /// </summary>
    public T Forward<T>(Func<T> forward)
    {
        ArgumentNullException.ThrowIfNull(forward);
        _engine.BeginMicroBatch(IsGradientAccumulationBoundary);
        long started = EngineTimings.Start();
        var result = forward();
        _engine.Timings.Forward += Stopwatch.GetElapsedTime(started);
        return result;
    }

    /// <summary>
    /// Backpropagates <paramref name="loss"/> (the micro-batch's mean loss), divided by
    /// <see cref="GradientAccumulationSteps"/> unless <paramref name="scaleWithAccumulation"/> is false, and multiplied
    /// by the fp16 loss scale. The optimizer step follows the mean over ranks of what each rank backpropagated.
    /// </summary>
    public void Backward(Tensor loss, bool scaleWithAccumulation = true)
    {
        ArgumentNullException.ThrowIfNull(loss);
        if (loss.numel() != 1)
            throw new ArgumentException($"Backward needs a scalar loss; got shape [{string.Join(", ", loss.shape)}].", nameof(loss));
        using var scope = NewDisposeScope();
        _engine.Backward(loss, scaleWithAccumulation ? 1.0 / _batch.GradientAccumulationSteps : 1);
    }

    /// <summary>
    /// Ends a micro-batch. At the accumulation boundary: all-reduces the gradients, then unscales (skipping the step on
    /// fp16 overflow), clips, sets the scheduled learning rate and takes the optimizer step, and returns what it did;
    /// otherwise returns null and the gradients keep adding up.
    /// </summary>
    public ZeroStepResult? Step()
    {
        bool boundary = IsGradientAccumulationBoundary;
        MicroSteps++;
        _boundary = null;
        if (!boundary)
        {
            // Whether or not the micro-batch's forward went through Forward.
            _engine.EndMicroBatch();
            return null;
        }
        return Record(_engine.ReduceAndStep(), _batch.TrainBatchSize);
    }

    /// <summary>Samples seen by every rank so far, the step of the metric files (train_batch_size per step unless told otherwise).</summary>
    public long GlobalSamples { get; private set; }

    // An optimizer step of rows samples, for LastStep and the metric files.
    private ZeroStepResult Record(ZeroStepResult result, long rows)
    {
        LastStep = result;
        GlobalSamples += rows;
        foreach (var writer in _metrics)
            writer.Write(MetricNames.Of(result.Loss, result.LearningRate, _settings.Precision == ZeroPrecision.Fp16 ? LossScale : null), GlobalSamples);
        return result;
    }

    /// <summary>Writes values that are not per-step (epoch loss, validation accuracy) to the metric files at the current samples.</summary>
    internal void WriteMetrics(IEnumerable<(string Name, double Value)> values)
    {
        foreach (var writer in _metrics)
            writer.Write(values, GlobalSamples);
    }

    /// <summary>
    /// One optimizer step over a window of micro-batches: each function returns its summed loss, or null when this rank
    /// has no rows there. Each rank backpropagates its summed loss x world / <paramref name="globalRows"/>, so the step
    /// follows exactly the mean-loss gradient of the window's rows over all ranks, however they fall on ranks and
    /// micro-batches (a rank with no rows only takes part in the all-reduce).
    /// </summary>
    internal ZeroStepResult Step(IReadOnlyList<Func<Tensor?>> microBatches, int globalRows)
    {
        if (microBatches.Count == 0)
            throw new ArgumentException("A step needs at least one micro-batch.", nameof(microBatches));
        _boundary = null;
        MicroSteps += microBatches.Count;
        return Record(_engine.Step(microBatches, (double)WorldSize / globalRows), globalRows);
    }

    /// <summary>
    /// Writes a checkpoint from every rank into <paramref name="directory"/>/<paramref name="tag"/> (default
    /// <c>global_step{N}</c>) and points <c>latest</c> at it: the fp32 (master) weights, the optimizer state, the step
    /// counters and loss scaler, and <paramref name="clientState"/>. Every rank must call it; under mpirun the folder
    /// must be one every process reaches. Returns the checkpoint's folder.
    /// </summary>
    public string SaveCheckpoint(string directory, string? tag = null, IReadOnlyDictionary<string, string>? clientState = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        if (tag is not null)
            CheckpointStore.RequireTag(tag);
        if (_communicator.Rank == 0)
            System.IO.Directory.CreateDirectory(directory);
        return SaveCheckpoint(new CheckpointStore(directory, int.MaxValue), tag ?? CheckpointStore.StepTag(GlobalStep + SkippedSteps), null, null, clientState);
    }

    internal string SaveCheckpoint(CheckpointStore store, string tag, Action<string>? everyRank, Func<TrainingState, TrainingState>? describe,
        IReadOnlyDictionary<string, string>? clientState)
    {
        return store.Write(_communicator, tag, everyRank, folder =>
        {
            _engine.SaveState(folder);
            CheckpointStore.WriteConfig(folder, _settings, _batch);
            var state = new TrainingState
            {
                GlobalStep = GlobalStep, SkippedSteps = SkippedSteps, LossScaler = _engine.LossScalerState, WorldSize = WorldSize,
                TrainBatchSize = _batch.TrainBatchSize, TrainMicroBatchSizePerGpu = _batch.TrainMicroBatchSizePerGpu, GradientAccumulationSteps = _batch.GradientAccumulationSteps,
                ParameterCount = _engine.ParameterCount, Precision = _settings.Precision.ToString(), GlobalSamples = GlobalSamples,
                Optimizer = _settings.OptimizerFactory is null ? _settings.Optimizer.Kind.ToString() : CheckpointStore.CustomOptimizer,
            };
            CheckpointStore.WriteState(folder, describe?.Invoke(state) ?? state);
            if (clientState is not null)
                File.WriteAllText(Path.Combine(folder, ClientStateFileName), JsonSerializer.Serialize(clientState));
        });
    }

    private const string ClientStateFileName = "client_state.json";

    /// <summary>
    /// Loads the checkpoint <paramref name="tag"/> of <paramref name="directory"/> (the <c>latest</c> one when null) into
    /// the weights, optimizer, step counters and loss scaler, and returns the client state it was saved with.
    /// </summary>
    public IReadOnlyDictionary<string, string> LoadCheckpoint(string directory, string? tag = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        if (tag is not null)
            CheckpointStore.RequireTag(tag);
        string folder = new CheckpointStore(directory, int.MaxValue).Folder(tag);
        var state = CheckpointStore.ReadState(folder);
        if (state.ParameterCount != _engine.ParameterCount)
            throw new InvalidDataException($"Checkpoint '{folder}' holds a model of {state.ParameterCount} trainable values; this module has {_engine.ParameterCount}.");
        LoadCheckpoint(folder, state);
        string client = Path.Combine(folder, ClientStateFileName);
        return File.Exists(client)
            ? JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(client)) ?? new Dictionary<string, string>()
            : new Dictionary<string, string>();
    }

    internal void LoadCheckpoint(string folder, TrainingState state)
    {
        _engine.LoadState(folder, state);
        MicroSteps = 0;
        _boundary = null;
        GlobalSamples = state.GlobalSamples;
        foreach (var writer in _metrics)
            writer.Resume(GlobalSamples);
    }

    /// <summary>
    /// Puts a bf16/fp16 module back in fp32 holding the master weights, to evaluate or save it at full precision. It ends
    /// training: later Forward, Backward and Step calls throw (a no-op in fp32, which can go on training).
    /// </summary>
    public void RestoreFullPrecision() => _engine.RestoreFullPrecision();

    /// <summary>Checks that every rank holds the same weights, bit for bit; throws naming the ranks that differ.</summary>
    public void VerifyReplicasMatch() => _engine.VerifyReplicasMatch();

    /// <summary>Releases the engine's buffers and optimizer (the module stays the caller's).</summary>
    public void Dispose()
    {
        _engine.Dispose();
        foreach (var writer in _metrics)
            writer.Dispose();
        _ownedCommunicator?.Dispose();
    }
}
