using System.Diagnostics;
using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.Distributed;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Training;

/// <summary>
/// One rank's side of stage-0 data parallelism: a full replica whose gradients accumulate over the micro-batches of a
/// step in one flat buffer, are averaged over all ranks by a single all-reduce, then unscaled, checked for overflow,
/// clipped and applied by an optimizer step that every rank takes identically. In bf16/fp16 the model computes in low
/// precision while the optimizer updates fp32 master weights held in one flat buffer.
/// </summary>
internal sealed class DataParallelEngine : IDisposable
{
    private readonly ICommunicator _communicator;
    private readonly EngineSettings _settings;
    private readonly FlatParameters _parameters;
    private readonly GradientBuffers _gradients;
    private readonly DynamicLossScaler? _lossScaler;
    private readonly OverlappedReducer? _reducer;
    private readonly IStepOptimizer _optimizer;
    private StepProgress _step;
    private bool _trainingEnded;
    private (float Loss, long Step) _lastFiniteLoss;

    /// <summary>What the step in progress has done; <see cref="ReduceAndStep"/> resets it for the next.</summary>
    private struct StepProgress
    {
        // The step's first micro-batch began, clearing the gradients.
        public bool Started;
        // Backward ran since the current micro-batch began: with fp32 accumulation of 16-bit gradients, they are
        // added into the fp32 buffer when it ends.
        public bool MicroBatchHasGradients;
        // The current micro-batch ends the step (the accumulation boundary).
        public bool AtBoundary;
        // The boundary's micro-batch took its backward: with overlap_comm its buckets are already on their way.
        public bool BoundaryHasBackward;
        // The rank's loss shares summed over the step, for the mean loss; Published once it is in the reduce buffer.
        public double Loss;
        public bool LossPublished;
    }

    /// <summary>
    /// Sets up the replica, as DDP's constructor: check that every rank built the same model in the same precision,
    /// flatten the weights and copy rank 0's everywhere, attach the gradients to one flat buffer, then create the loss
    /// scaler, the overlapping reducer and the optimizer.
    /// </summary>
    public DataParallelEngine(nn.Module module, ICommunicator communicator, EngineSettings settings)
    {
        _communicator = communicator;
        _settings = settings;
        ReplicaChecks.RequireSameModel(communicator, FlatParameters.Trainable(module).Sum(p => p.Parameter.numel()));
        ReplicaChecks.RequireSamePrecision(communicator, settings.Precision);
        ScalarType? modelType = settings.Precision == ZeroPrecision.Fp32 ? null : settings.Precision.TensorType();
        _parameters = new FlatParameters(module, modelType, communicator);
        _gradients = new GradientBuffers(communicator, _parameters.Count, modelType, settings.AccumulatesInFp32,
            settings.CommunicationDataType.TensorType(), settings.ReduceBucketSize);
        _parameters.AttachGradients(_gradients.ModelGradients, _gradients.Accumulated);
        if (settings.Precision == ZeroPrecision.Fp16)
            _lossScaler = new DynamicLossScaler(settings.LossScaling);
        if (settings.OverlapCommunication)
            _reducer = new OverlappedReducer(module, _parameters.Model, _gradients, communicator.Rank, settings.ReduceBucketSize);
        _optimizer = IStepOptimizer.Create(settings, _parameters, _gradients.Summed);
    }

    /// <summary>
    /// One optimizer step over a window of micro-batches, each returning its loss (or null when this rank has no rows
    /// there), weighted by <paramref name="share"/> (see <see cref="GradientScale"/>).
    /// </summary>
    public ZeroStepResult Step(IReadOnlyList<Func<Tensor?>> microBatches, double share)
    {
        for (int micro = 0; micro < microBatches.Count; micro++)
        {
            using var scope = NewDisposeScope();
            BeginMicroBatch(boundary: micro == microBatches.Count - 1);
            long started = EngineTimings.Start();
            var loss = microBatches[micro]();
            Timings.Forward += Stopwatch.GetElapsedTime(started);
            if (loss is not null)
                Backward(loss, share);
        }
        return ReduceAndStep();
    }

    /// <summary>
    /// Ends the step: all-reduces the gradients (the rest of the buckets, with overlap_comm), then, identically on every
    /// rank, skips on fp16 overflow or averages and unscales, clips, sets the scheduled learning rate and takes the
    /// optimizer step.
    /// </summary>
    public ZeroStepResult ReduceAndStep()
    {
        RequireTraining();
        using var scope = NewDisposeScope();
        if (!_step.Started)
            BeginMicroBatch(boundary: true);
        var scale = GradientScale.Of(_settings, _communicator.WorldSize, LossScale);
        var step = _step;
        _step = default; // the next step starts clean even if this one's reduce fails
        long started = EngineTimings.Start();
        ReduceGradients(step);
        Timings.AllReduce += Stopwatch.GetElapsedTime(started);
        started = EngineTimings.Start();
        float meanLoss = _gradients.Loss / _communicator.WorldSize;
        if (_lossScaler is not null && _lossScaler.SkipsOverflow(_gradients.Summed, meanLoss))
            return Skip(meanLoss, scale, double.NaN);
        if (!TakesStep("the loss", meanLoss, step))
            return Skip(meanLoss, scale, double.NaN);
        var gradients = new ScaledGradients(_gradients.Summed, scale.OnSum);
        double norm = _settings.GradientClipping > 0 ? gradients.ClipToNorm(_settings.GradientClipping) : double.NaN;
        if (_settings.GradientClipping > 0 && !TakesStep("the gradient norm", norm, step))
            return Skip(meanLoss, scale, norm);
        double learningRate = ApplySchedule();
        _optimizer.Step(gradients.PendingFactor);
        _lossScaler?.Update(overflow: false);
        GlobalStep++;
        _lastFiniteLoss = (meanLoss, GlobalStep + SkippedSteps);
        Timings.OptimizerStep += Stopwatch.GetElapsedTime(started);
        return new ZeroStepResult(meanLoss, false, learningRate, scale.LossScale, norm);
    }

    // A step that takes no optimizer step: the schedule does not advance, as DeepSpeed's skipped fp16 steps.
    private ZeroStepResult Skip(float meanLoss, GradientScale scale, double norm)
    {
        SkippedSteps++;
        return new ZeroStepResult(meanLoss, true, CurrentLearningRate(), scale.LossScale, norm);
    }

    // fp16 skips non-finite steps (the loss scaler's overflow); in fp32 and bf16 a NaN or infinity would reach every
    // weight, so training stops before the optimizer step, or skips it with SkipNonFiniteSteps. The value is
    // all-reduced, so every rank decides the same here.
    private bool TakesStep(string what, double value, StepProgress step)
    {
        if (double.IsFinite(value) || _lossScaler is not null)
            return true;
        if (_settings.SkipNonFiniteSteps)
            return false;
        var ranks = _communicator.AllGather(double.IsFinite(step.Loss) ? 0 : 1);
        var culprits = Enumerable.Range(0, ranks.Length).Where(rank => ranks[rank] != 0).ToList();
        throw new InvalidOperationException(
            $"Optimizer step {GlobalStep + SkippedSteps + 1}: {what} is {value}" +
            (culprits.Count > 0 ? $" (rank(s) {string.Join(", ", culprits)} backpropagated a non-finite loss)" : " (from the gradients summed over the ranks)") +
            (_lastFiniteLoss is var (loss, at) && at > 0 ? $"; the last finite loss was {loss:G6} at optimizer step {at}." : "; no step had a finite loss yet.") +
            " Training stops before the weights take it: check that step's rows, the learning rate and the model's outputs, or enable gradient clipping.");
    }

    /// <summary>
    /// Starts a micro-batch, before its forward pass. The first of a step clears the gradients; at the accumulation
    /// boundary (the step's last micro-batch) the layers signal during backward so that buckets leave early (overlap_comm).
    /// </summary>
    public void BeginMicroBatch(bool boundary)
    {
        RequireTraining();
        if (!_step.Started)
        {
            _gradients.StartStep();
            _step.Started = true;
        }
        else
        {
            EndMicroBatch();
        }
        _step.AtBoundary = boundary;
        if (boundary && _reducer is not null)
            _reducer.BeginBoundary();
    }

    /// <summary>
    /// Ends a micro-batch that is not the step's last (also done by the next <see cref="BeginMicroBatch"/>): with 16-bit
    /// gradients accumulated in fp32, its gradients are added into the fp32 buffer now.
    /// </summary>
    public void EndMicroBatch()
    {
        if (_step.Started && _step.MicroBatchHasGradients)
            _gradients.EndMicroBatch();
        _step.MicroBatchHasGradients = false;
    }

    /// <summary>
    /// Adds the gradient of <paramref name="loss"/> weighted by <paramref name="share"/>, this rank's part of the step's
    /// objective: the step follows the mean over ranks of what each rank passed since its last step.
    /// </summary>
    public void Backward(Tensor loss, double share)
    {
        if (!_step.Started)
            BeginMicroBatch(boundary: false);
        // With overlap_comm the boundary's backward sends buckets while it runs: a second backward would add to
        // gradients that are already on their way.
        if (_step.AtBoundary && _reducer is not null && _step.BoundaryHasBackward)
            throw new InvalidOperationException("With overlap_comm (zero_optimization.overlap_comm) the accumulation boundary's micro-batch takes one " +
                "Backward; sum its losses first, or run Forward and Backward again as separate micro-batches.");
        _step.BoundaryHasBackward |= _step.AtBoundary;
        _step.MicroBatchHasGradients = true;
        using var scope = NewDisposeScope();
        var fp32Loss = loss.to(ScalarType.Float32);
        _step.Loss += fp32Loss.item<float>() * share;
        if (_step.AtBoundary && _reducer is not null)
            PublishLoss();
        long started = EngineTimings.Start();
        (fp32Loss * GradientScale.Of(_settings, _communicator.WorldSize, LossScale).OnLoss(share)).backward();
        Timings.Backward += Stopwatch.GetElapsedTime(started);
    }

    // The rest of the buckets (overlap_comm) or the whole buffer, the rank's loss riding along.
    private void ReduceGradients(StepProgress step)
    {
        if (!step.LossPublished)
            _gradients.Loss = (float)step.Loss;
        if (_reducer is null)
        {
            _gradients.Reduce(0, _parameters.Count + 1);
            return;
        }
        // A step whose last backward came without a Forward never began its boundary: no bucket is pending yet.
        if (!step.AtBoundary)
            _reducer.BeginBoundary();
        _reducer.FinishBackward();
    }

    // With overlap_comm, before the boundary's backward: the loss rides in the first bucket, which may leave early.
    private void PublishLoss()
    {
        if (_step.LossPublished)
            return;
        _gradients.Loss = (float)_step.Loss;
        _step.LossPublished = true;
    }

    private void RequireTraining()
    {
        if (_trainingEnded)
            throw new InvalidOperationException("RestoreFullPrecision put the model back in fp32 and ended training: the engine no longer holds its " +
                "gradients. Save a checkpoint and load it into a new engine to train further.");
    }

    /// <summary>Optimizer steps taken (skipped steps not counted); the learning-rate schedule's position.</summary>
    public long GlobalStep { get; private set; }

    /// <summary>Steps skipped because fp16 gradients overflowed.</summary>
    public long SkippedSteps { get; private set; }

    /// <summary>The current fp16 loss scale (1 in fp32 and bf16).</summary>
    public double LossScale => _lossScaler?.Scale ?? 1;

    public EngineTimings Timings { get; } = new();

    /// <summary>With overlap_comm: how many gradient buckets left while backward was still running.</summary>
    public int BucketsReducedDuringBackward => _reducer?.LaunchedDuringBackward ?? 0;

    /// <summary>For the log: how the gradients travel when the communicator chose a way worth telling, else null.</summary>
    public string? GradientTransport => _gradients.Transport;

    /// <summary>The number of trainable values (the length of the weights a checkpoint holds).</summary>
    public long ParameterCount => _parameters.Count;

    public LossScalerState? LossScalerState => _lossScaler?.State;

    /// <summary>
    /// The bytes of the training state the engine keeps: the model's weights, the gradients, the fp32 master weights and
    /// the flat AdamW's moments. A TorchSharp optimizer's own state is not counted (<see cref="UsesFlatAdamW"/> is false).
    /// </summary>
    public long StateBytes => _parameters.Bytes + _gradients.GradientBytes + _optimizer.StateBytes;

    /// <summary>The bytes of the engine's working buffers: the staging bucket gradients travel through in another type.</summary>
    public long WorkingBytes => _gradients.StagingBytes;

    /// <summary>Whether the built-in AdamW steps the flat weights itself rather than through a TorchSharp optimizer.</summary>
    public bool UsesFlatAdamW => _optimizer is FlatAdamW;

    // DeepSpeed's scheduler sets iteration -1's rate when built and steps after every optimizer step that was not
    // skipped, so the step about to be taken uses iteration GlobalStep - 1.
    private long ScheduleIteration => GlobalStep - 1;

    // The learning rate (and OneCycle's momentum) of the step about to be taken; returns the first group's rate.
    private double ApplySchedule()
    {
        if (_settings.Scheduler is { } schedule)
            _optimizer.Schedule(rate => schedule.LearningRate(ScheduleIteration, rate), schedule.Momentum(ScheduleIteration));
        return CurrentLearningRate();
    }

    /// <summary>The learning rate of the next optimizer step (the first parameter group's).</summary>
    public double CurrentLearningRate() =>
        _settings.Scheduler?.LearningRate(ScheduleIteration, _optimizer.BaseLearningRate) ?? _optimizer.BaseLearningRate;

    /// <summary>Writes the fp32 weights the optimizer updates (master weights in bf16/fp16) and the optimizer state.</summary>
    public void SaveState(string folder)
    {
        _parameters.Write(Path.Combine(folder, CheckpointStore.WeightsFileName));
        _optimizer.Save(Path.Combine(folder, _optimizer.StateFileName));
    }

    /// <summary>Restores what <see cref="SaveState"/> wrote and the step counters and loss scale of <paramref name="state"/>.</summary>
    public void LoadState(string folder, TrainingState state)
    {
        _parameters.Read(Path.Combine(folder, CheckpointStore.WeightsFileName));
        _optimizer.Load(CheckpointStore.OptimizerStatePath(folder, _optimizer.StateFileName));
        GlobalStep = state.GlobalStep;
        SkippedSteps = state.SkippedSteps;
        if (_lossScaler is not null && state.LossScaler is { } scaler)
            _lossScaler.Restore(scaler);
    }

    /// <summary>A copy of the fp32 weights the optimizer updates (the master weights in bf16/fp16), to come back to later.</summary>
    public Tensor CopyWeights() => _parameters.Weights.clone();

    /// <summary>Sets the weights, master and module alike, to a copy <see cref="CopyWeights"/> made; the optimizer state stays.</summary>
    public void LoadWeights(Tensor weights) => _parameters.Load(weights);

    /// <summary>
    /// Puts the model back in fp32 holding the master weights, so it scores and saves at full precision. A no-op in fp32.
    /// </summary>
    public void RestoreFullPrecision()
    {
        if (!_parameters.IsMixedPrecision)
            return;
        _trainingEnded = true;
        _parameters.RestoreFullPrecision();
    }

    /// <summary>Throws, naming the ranks, unless every rank holds the same weights bit for bit.</summary>
    public void VerifyReplicasMatch() => ReplicaChecks.RequireEqualWeights(_communicator, _parameters.Checksum());

    public void Dispose()
    {
        _reducer?.Dispose();
        _optimizer.Dispose();
        _parameters.Dispose();
        _gradients.Dispose();
    }
}
