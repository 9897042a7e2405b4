using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.Training;

/// <summary>
/// One rank's side of stage-0 data parallelism: a full replica whose gradients accumulate over the micro-batches of a
/// step in one flat buffer, are averaged over all ranks by a single all-reduce, then unscaled, checked for overflow,
/// clipped and applied by an optimizer step that every rank takes identically. In bf16/fp16 the model computes in low
/// precision while the optimizer updates fp32 master weights held in one flat buffer.
/// </summary>
internal sealed class DataParallelEngine : IDisposable
{
    private readonly nn.Module _module;
    private readonly ICommunicator _communicator;
    private readonly EngineSettings _settings;
    private readonly long _count;
    private Parameter[] _modelParameters;

    // The model's gradients, their fp32 accumulation and their sum over ranks, the rank's loss riding along.
    private readonly GradientBuffers _gradients;

    // The fp32 weights the optimizer updates, in one flat buffer: in mixed precision the master weights, whose views are
    // the optimizer's parameters; in fp32 the model's own parameters are views of it. AdamW steps it in chunks.
    private readonly Tensor _flatWeights;
    private readonly bool _mixedPrecision;

    // Mixed precision: the model's 16-bit parameters are views of this buffer, so they take the master weights' new
    // values in one copy (or chunk by chunk inside the flat AdamW, while the chunk is in cache).
    private readonly Tensor? _flatModelWeights;
    private readonly Parameter[] _optimizedParameters;

    // The built-in AdamW steps the flat weights with FlatAdamW; everything else with a TorchSharp optimizer.
    private readonly optim.Optimizer? _optimizer;
    private readonly FlatAdamW? _flatAdamW;
    private readonly double[] _baseLearningRates;
    private readonly DynamicLossScaler? _lossScaler;
    private readonly OverlappedReducer? _reducer;

    // The step in progress: whether its gradients were cleared, the rank's summed loss share, whether that sum is in
    // the buffer, and whether the current micro-batch is the accumulation boundary.
    private bool _stepStarted;
    private bool _backwardSinceMicroBatchBegan;
    private double _localLoss;
    private bool _lossPublished;
    private bool _atBoundary;
    private bool _backwardAtBoundary;
    private bool _trainingEnded;

    public DataParallelEngine(nn.Module module, ICommunicator communicator, EngineSettings settings)
    {
        _module = module;
        _communicator = communicator;
        _settings = settings;
        var named = TrainableParameters(module);
        _modelParameters = named.Select(p => p.Parameter).ToArray();
        _count = _modelParameters.Sum(p => p.numel());
        RequireSameModelOnEveryRank();
        RequireSamePrecisionOnEveryRank();
        BroadcastParameters(root: 0);
        ScalarType? modelType = settings.Precision == ZeroPrecision.Fp32 ? null : settings.Precision.TensorType();
        using (no_grad())
            _flatWeights = cat(_modelParameters.Select(p => p.detach().flatten()).ToList()).contiguous();
        _mixedPrecision = modelType is not null;
        if (modelType is { } dtype)
        {
            _optimizedParameters = Views(_modelParameters, _flatWeights).Select(v => new Parameter(v)).ToArray();
            module.to(dtype);
            _modelParameters = TrainableParameters(module).Select(p => p.Parameter).ToArray();
            _flatModelWeights = _flatWeights.to(dtype);
            ViewInto(_modelParameters, _flatModelWeights);
        }
        else
        {
            ViewInto(_modelParameters, _flatWeights);
            _optimizedParameters = _modelParameters;
        }
        _gradients = new GradientBuffers(communicator, _count, modelType, settings.AccumulatesInFp32, settings.CommunicationDataType.TensorType(), settings.ReduceBucketSize);
        AttachGradients(_modelParameters, _gradients.ModelGradients);
        // Gradients accumulated in 16 bits are widened for a TorchSharp optimizer only during its step.
        if (_mixedPrecision && _gradients.Accumulated is { } accumulated)
            AttachGradients(_optimizedParameters, accumulated);
        if (settings.Precision == ZeroPrecision.Fp16)
            _lossScaler = new DynamicLossScaler(settings.LossScaling);
        if (settings.OverlapCommunication)
            _reducer = new OverlappedReducer(module, _modelParameters, _gradients, communicator.Rank, settings.ReduceBucketSize);
        if (settings.OptimizerFactory is null && settings.Optimizer.Kind == ZeroOptimizer.AdamW)
        {
            long offset = 0;
            var decayed = new List<(long Start, long Length)>();
            // The names are the model's; the sizes come from the optimized parameters (module.to replaced the fp32 ones).
            foreach (var (name, parameter) in named.Select((p, i) => (p.Name, _optimizedParameters[i])))
            {
                if (settings.Optimizer.ExcludeFromWeightDecay?.Invoke(name) != true)
                    decayed.Add((offset, parameter.numel()));
                offset += parameter.numel();
            }
            _flatAdamW = new FlatAdamW(_flatWeights, _gradients.Summed, decayed, settings.Optimizer, _flatModelWeights);
            _baseLearningRates = new[] { settings.Optimizer.LearningRate };
            return;
        }
        _optimizer = settings.OptimizerFactory?.Invoke(_optimizedParameters)
            ?? settings.Optimizer.Create(named.Select((p, i) => (p.Name, _optimizedParameters[i])).ToList());
        // Each group's own rate is the base the schedule scales (the optimizer's rate for the built-in ones).
        _baseLearningRates = settings.OptimizerFactory is null
            ? _optimizer.ParamGroups.Select(_ => settings.Optimizer.LearningRate).ToArray()
            : _optimizer.ParamGroups.Select(group => group.LearningRate).ToArray();
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
    public long ParameterCount => _count;

    public LossScalerState? LossScalerState => _lossScaler?.State;

    /// <summary>
    /// The bytes of the training state the engine keeps: the model's weights, the gradients, the fp32 master weights and
    /// the flat AdamW's moments. A TorchSharp optimizer's own state is not counted (<see cref="UsesFlatAdamW"/> is false).
    /// </summary>
    public long StateBytes =>
        TensorMemory.Bytes(_modelParameters) + _gradients.GradientBytes + (_mixedPrecision ? TensorMemory.Bytes(_flatWeights) : 0) + (_flatAdamW?.StateBytes ?? 0);

    /// <summary>The bytes of the engine's working buffers, one bucket or chunk each: staging for the all-reduce and the flat AdamW's.</summary>
    public long WorkingBytes => _gradients.StagingBytes + (_flatAdamW?.WorkingBytes ?? 0);

    /// <summary>Whether the built-in AdamW steps the flat weights itself rather than through a TorchSharp optimizer.</summary>
    public bool UsesFlatAdamW => _flatAdamW is not null;

    /// <summary>Writes the fp32 weights the optimizer updates (master weights in bf16/fp16) and the optimizer state.</summary>
    public void SaveState(string folder)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var flat = cat(_optimizedParameters.Select(p => p.detach().flatten()).ToList()).contiguous();
        File.WriteAllBytes(Path.Combine(folder, CheckpointStore.WeightsFileName), System.Runtime.InteropServices.MemoryMarshal.AsBytes(TensorMemory.AsSpan(flat)).ToArray());
        if (_flatAdamW is not null)
            _flatAdamW.Save(Path.Combine(folder, CheckpointStore.FlatOptimizerFileName));
        else
            ((OptimizerHelper)_optimizer!).save_state_dict(Path.Combine(folder, CheckpointStore.OptimizerFileName));
    }

    /// <summary>Restores what <see cref="SaveState"/> wrote and the step counters and loss scale of <paramref name="state"/>.</summary>
    public void LoadState(string folder, TrainingState state)
    {
        string weightsPath = Path.Combine(folder, CheckpointStore.WeightsFileName);
        byte[] bytes = File.ReadAllBytes(weightsPath);
        if (bytes.Length != _count * sizeof(float))
            throw new InvalidDataException($"Checkpoint weights '{weightsPath}' hold {bytes.Length / sizeof(float)} values; the model has {_count}.");
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var flat = torch.tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray());
            foreach (var (parameter, view) in _optimizedParameters.Zip(Views(_optimizedParameters, flat)))
                parameter.copy_(view);
            if (_mixedPrecision)
                for (int i = 0; i < _modelParameters.Length; i++)
                    _modelParameters[i].copy_(_optimizedParameters[i]);
        }
        string optimizerPath = Path.Combine(folder, _flatAdamW is null ? CheckpointStore.OptimizerFileName : CheckpointStore.FlatOptimizerFileName);
        if (!File.Exists(optimizerPath) && _flatAdamW is not null && File.Exists(Path.Combine(folder, CheckpointStore.OptimizerFileName)))
            throw new InvalidDataException($"Checkpoint '{folder}' holds TorchSharp's optimizer state ('{CheckpointStore.OptimizerFileName}'), as earlier " +
                $"builds wrote for fp32 AdamW; the built-in AdamW now keeps its state in '{CheckpointStore.FlatOptimizerFileName}'. Resume it " +
                "with the build that wrote it, or start a new run from its weights.");
        if (!File.Exists(optimizerPath))
            throw new InvalidDataException($"Checkpoint '{folder}' has no '{Path.GetFileName(optimizerPath)}': it was written with another precision or optimizer than this run's.");
        if (_flatAdamW is not null)
            _flatAdamW.Load(optimizerPath);
        else
            ((OptimizerHelper)_optimizer!).load_state_dict(optimizerPath);
        GlobalStep = state.GlobalStep;
        SkippedSteps = state.SkippedSteps;
        if (_lossScaler is not null && state.LossScaler is { } scaler)
            _lossScaler.Restore(scaler);
    }

    /// <summary>
    /// Starts a micro-batch, before its forward pass. The first of a step clears the gradients; at the accumulation
    /// boundary (the step's last micro-batch) the layers signal during backward so that buckets leave early (overlap_comm).
    /// </summary>
    public void BeginMicroBatch(bool boundary)
    {
        RequireTraining();
        if (!_stepStarted)
        {
            _gradients.StartStep();
            _localLoss = 0;
            _lossPublished = false;
            _backwardAtBoundary = false;
            _stepStarted = true;
        }
        else
        {
            EndMicroBatch();
        }
        _atBoundary = boundary;
        if (boundary && _reducer is not null)
        {
            _reducer.BeginBoundary();
            _reducer.Active = true;
        }
    }

    /// <summary>
    /// Ends a micro-batch that is not the step's last (also done by the next <see cref="BeginMicroBatch"/>): with 16-bit
    /// gradients accumulated in fp32, its gradients are added into the fp32 buffer now.
    /// </summary>
    public void EndMicroBatch()
    {
        if (_stepStarted && _backwardSinceMicroBatchBegan)
            _gradients.EndMicroBatch();
        _backwardSinceMicroBatchBegan = false;
    }

    /// <summary>
    /// Adds the gradient of <paramref name="loss"/>, this rank's share of the step's objective: the step follows the
    /// mean over ranks of the sum of the shares each rank passed since its last step.
    /// </summary>
    public void Backward(Tensor loss)
    {
        if (!_stepStarted)
            BeginMicroBatch(boundary: false);
        // With overlap_comm the boundary's backward sends buckets while it runs: a second backward would add to
        // gradients that are already on their way.
        if (_atBoundary && _reducer is not null && _backwardAtBoundary)
            throw new InvalidOperationException("With overlap_comm (zero_optimization.overlap_comm) the accumulation boundary's micro-batch takes one " +
                "Backward; sum its losses first, or run Forward and Backward again as separate micro-batches.");
        _backwardAtBoundary |= _atBoundary;
        _backwardSinceMicroBatchBegan = true;
        using var scope = NewDisposeScope();
        // As DeepSpeed: prescale_gradients divides by the world size before the all-reduce, otherwise by
        // gradient_predivide_factor before and the rest after.
        var wireLoss = Predivide == 1 ? loss.to(ScalarType.Float32) : loss.to(ScalarType.Float32) / Predivide;
        _localLoss += wireLoss.item<float>();
        // The loss rides in the first bucket, which may leave while the boundary's backward is still running.
        if (_atBoundary && _reducer is not null)
            PublishLoss();
        long started = EngineTimings.Start();
        (LossScale == 1 ? wireLoss : wireLoss * LossScale).backward();
        Timings.Backward += Stopwatch.GetElapsedTime(started);
    }

    private double Predivide => _settings.PrescaleGradients ? _communicator.WorldSize : _settings.GradientPredivideFactor;

    private void PublishLoss()
    {
        if (_lossPublished)
            return;
        _gradients.Loss = (float)_localLoss;
        _lossPublished = true;
    }

    private void RequireTraining()
    {
        if (_trainingEnded)
            throw new InvalidOperationException("RestoreFullPrecision put the model back in fp32 and ended training: the engine no longer holds its " +
                "gradients. Save a checkpoint and load it into a new engine to train further.");
    }

    /// <summary>
    /// Ends the step: all-reduces the gradients (the rest of the buckets, with overlap_comm), then, identically on every
    /// rank, skips on fp16 overflow or unscales, clips, sets the scheduled learning rate and takes the optimizer step.
    /// </summary>
    public ZeroStepResult ReduceAndStep()
    {
        RequireTraining();
        using var scope = NewDisposeScope();
        if (!_stepStarted)
            BeginMicroBatch(boundary: true);
        _stepStarted = false;
        double afterReduce = Predivide / _communicator.WorldSize;
        double lossScale = LossScale;

        long reduceStarted = EngineTimings.Start();
        PublishLoss();
        if (_reducer is not null)
            _reducer.Finish();
        else
            _gradients.Reduce(0, _count + 1);
        Timings.AllReduce += Stopwatch.GetElapsedTime(reduceStarted);
        long stepStarted = EngineTimings.Start();
        float meanLoss = (float)(_gradients.Loss * afterReduce);
        var gradients = _gradients.Summed;
        // The all-reduced buffer is the same on every rank, so every rank reaches the same verdict: an inf or NaN in
        // any rank's gradients shows up in the sum. As DeepSpeed's _has_inf_or_nan, the check is the sum of the values
        // (one scalar, rather than a flag per value), taken in fp32.
        if (_lossScaler is not null && !float.IsFinite(gradients.sum(ScalarType.Float32).item<float>()))
        {
            _lossScaler.Update(overflow: true);
            SkippedSteps++;
            return new ZeroStepResult(meanLoss, true, CurrentLearningRate(), lossScale, double.NaN);
        }
        // fp32 gradients are unscaled and clipped in place; 16-bit ones as the optimizer widens them.
        bool inPlace = gradients.dtype == ScalarType.Float32;
        double gradientScale = afterReduce / lossScale;
        if (inPlace && gradientScale != 1)
        {
            gradients.mul_(gradientScale);
            gradientScale = 1;
        }
        double norm = double.NaN;
        if (_settings.GradientClipping > 0)
        {
            // As torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1.
            norm = (inPlace ? gradients.norm().item<float>() : Fp32Norm(gradients)) * gradientScale;
            double coefficient = _settings.GradientClipping / (norm + 1e-6);
            if (coefficient < 1 && inPlace)
                gradients.mul_(coefficient);
            else if (coefficient < 1)
                gradientScale *= coefficient;
        }
        double learningRate = ApplySchedule();
        using (no_grad())
        {
            if (_flatAdamW is not null)
            {
                _flatAdamW.Step(gradientScale);
            }
            else
            {
                if (inPlace)
                    _optimizer!.step();
                else
                    StepWithWidenedGradients(gradients, gradientScale);
                _flatModelWeights?.copy_(_flatWeights);
            }
        }
        _lossScaler?.Update(overflow: false);
        GlobalStep++;
        Timings.OptimizerStep += Stopwatch.GetElapsedTime(stepStarted);
        return new ZeroStepResult(meanLoss, false, learningRate, lossScale, norm);
    }

    // A TorchSharp optimizer over gradients accumulated in 16 bits: fp32 copies exist for the length of its step.
    private void StepWithWidenedGradients(Tensor gradients, double gradientScale)
    {
        using var scope = NewDisposeScope();
        var widened = gradients.to(ScalarType.Float32).mul_(gradientScale);
        AttachGradients(_optimizedParameters, widened);
        try
        {
            _optimizer!.step();
        }
        finally
        {
            foreach (var parameter in _optimizedParameters)
                parameter.grad = null;
        }
    }

    // The L2 norm of 16-bit gradients, summed in fp32 a chunk at a time: a whole fp32 copy would cost 4 bytes per value.
    private static double Fp32Norm(Tensor gradients)
    {
        const long Chunk = 1 << 20; // 4 MB of fp32 at a time
        double squares = 0;
        for (long start = 0; start < gradients.numel(); start += Chunk)
        {
            using var scope = NewDisposeScope();
            var chunk = gradients.narrow(0, start, Math.Min(Chunk, gradients.numel() - start)).to(ScalarType.Float32);
            squares += chunk.dot(chunk).item<float>();
        }
        return Math.Sqrt(squares);
    }

    /// <summary>
    /// Puts the model back in fp32 holding the master weights, so it scores and saves at full precision. A no-op in fp32.
    /// </summary>
    public void RestoreFullPrecision()
    {
        if (!_mixedPrecision)
            return;
        _trainingEnded = true;
        foreach (var parameter in _modelParameters)
            parameter.grad = null;
        _module.to(ScalarType.Float32);
        _modelParameters = TrainableParameters(_module).Select(p => p.Parameter).ToArray();
        using var _ = no_grad();
        for (int i = 0; i < _modelParameters.Length; i++)
            _modelParameters[i].copy_(_optimizedParameters[i]);
    }

    // Ranks that built different models (say, label columns with different class counts in per-rank inputs) would
    // exchange buffers of different lengths: compare the sizes first and name the odd ranks.
    private void RequireSameModelOnEveryRank()
    {
        var counts = _communicator.AllGather(_count);
        var differing = Enumerable.Range(0, counts.Length).Where(rank => counts[rank] != counts[0]).ToList();
        if (differing.Count > 0)
            throw new InvalidOperationException(
                $"The ranks built different models: rank 0's has {counts[0]} trainable values, " +
                string.Join(", ", differing.Select(rank => $"rank {rank}'s {counts[rank]}")) +
                ". Every rank must see the same columns and classes (the label's key type must have the same values everywhere).");
    }

    // Precision Auto is resolved by each process on its own CPU; machines that differ in native bf16 would otherwise
    // train one model in two precisions.
    private void RequireSamePrecisionOnEveryRank()
    {
        var precisions = _communicator.AllGather((long)_settings.Precision);
        var differing = Enumerable.Range(0, precisions.Length).Where(rank => precisions[rank] != precisions[0]).ToList();
        if (differing.Count > 0)
            throw new InvalidOperationException(
                $"The ranks train in different precisions: rank 0 in {(ZeroPrecision)precisions[0]}, " +
                string.Join(", ", differing.Select(rank => $"rank {rank} in {(ZeroPrecision)precisions[rank]}")) +
                ". Precision Auto picks bf16 only on CPUs that compute it natively, so machines of different kinds choose differently: " +
                "set the precision explicitly (ZeroOptions.Precision, bf16.enabled) for this job.");
    }

    /// <summary>
    /// Confirms that every rank ends with the same weights, bit for bit: each rank hashes its weights and the hashes are
    /// gathered. A difference means the ranks did not take the same steps, and is an error naming the ranks.
    /// </summary>
    public void VerifyReplicasMatch()
    {
        var checksums = _communicator.AllGather(WeightChecksum());
        var differing = Enumerable.Range(0, checksums.Length).Where(rank => checksums[rank] != checksums[0]).ToList();
        if (differing.Count > 0)
            throw new ZeroCommunicationException(_communicator.Rank,
                $"After training, rank(s) {string.Join(", ", differing)} hold weights that differ from rank 0's: the replicas drifted apart.");
    }

    // FNV-1a over the weights' bits.
    private long WeightChecksum()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var flat = cat(_modelParameters.Select(p => p.detach().to(ScalarType.Float32).flatten()).ToList()).contiguous();
        ulong hash = 14695981039346656037;
        foreach (uint bits in System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(TensorMemory.AsSpan(flat)))
            hash = (hash ^ bits) * 1099511628211;
        return (long)hash;
    }

    /// <summary>Copies rank <paramref name="root"/>'s weights to every rank, so replicas start equal.</summary>
    public void BroadcastParameters(int root)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var flat = cat(_modelParameters.Select(p => p.detach().to(ScalarType.Float32).flatten()).ToList()).contiguous();
        _communicator.Broadcast(TensorMemory.AsSpan(flat), root);
        foreach (var (parameter, view) in _modelParameters.Zip(Views(_modelParameters, flat)))
            parameter.copy_(view);
    }

    // DeepSpeed's scheduler sets iteration -1's rate when built and steps after every optimizer step that was not
    // skipped, so the step about to be taken uses iteration GlobalStep - 1.
    private long ScheduleIteration => GlobalStep - 1;

    // The learning rate (and momentum, for OneCycle) of the step about to be taken, set on every parameter group from
    // the group's base rate; returns the first group's.
    private double ApplySchedule()
    {
        if (_settings.Schedule is not { } schedule)
            return _baseLearningRates[0];
        double? momentum = schedule.Momentum(ScheduleIteration);
        if (_flatAdamW is not null)
        {
            _flatAdamW.LearningRate = schedule.LearningRate(ScheduleIteration, _baseLearningRates[0]);
            if (momentum is { } betaOne)
                (_flatAdamW.Beta1, _flatAdamW.Beta2) = (betaOne, 0.99);   // as OptimizerSettings.SetMomentum
            return CurrentLearningRate();
        }
        int index = 0;
        foreach (var group in _optimizer!.ParamGroups)
        {
            group.LearningRate = schedule.LearningRate(ScheduleIteration, _baseLearningRates[index++]);
            if (momentum is { } m)
                OptimizerSettings.SetMomentum(group, m);
        }
        return CurrentLearningRate();
    }

    /// <summary>The learning rate of the next optimizer step (the first parameter group's).</summary>
    public double CurrentLearningRate() => _settings.Schedule?.LearningRate(ScheduleIteration, _baseLearningRates[0]) ?? _baseLearningRates[0];

    private static List<(string Name, Parameter Parameter)> TrainableParameters(nn.Module module) =>
        module.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();

    // Consecutive views into a flat buffer, shaped like the given parameters.
    private static IEnumerable<Tensor> Views(IEnumerable<Parameter> parameters, Tensor flat)
    {
        long offset = 0;
        foreach (var parameter in parameters)
        {
            yield return flat.narrow(0, offset, parameter.numel()).view(parameter.shape);
            offset += parameter.numel();
        }
    }

    // As PyTorch's p.data = view: each parameter keeps its values in the flat buffer from now on.
    private static void ViewInto(Parameter[] parameters, Tensor flat)
    {
        using var _ = no_grad();
        foreach (var (parameter, view) in parameters.Zip(Views(parameters, flat)))
            parameter.set_(view);
    }

    private static void AttachGradients(Parameter[] parameters, Tensor flat)
    {
        foreach (var (parameter, view) in parameters.Zip(Views(parameters, flat)))
            parameter.grad = view;
    }

    public void Dispose()
    {
        _reducer?.Dispose();
        foreach (var parameter in _modelParameters.Concat(_optimizedParameters))
            parameter.grad = null;
        _optimizer?.Dispose();
        _flatAdamW?.Dispose();
        _gradients.Dispose();
        _flatWeights.Dispose();
        _flatModelWeights?.Dispose();
    }
}
