using System.Runtime.InteropServices;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Tensors;
using Microsoft.ML.Zero.Training;
using Microsoft.ML.Zero.Monitoring;

namespace Microsoft.ML.Zero.Loop;

/// <summary>
/// The best evaluation so far by the chosen metric, with a copy of its weights when the run returns to them at the
/// end, and the count of evaluations since the metric last improved by more than the threshold (Hugging Face's
/// EarlyStoppingCallback). Every rank holds the same one: the metrics come from sums over all ranks.
/// </summary>
internal sealed class BestModel : IDisposable
{
    public const string WeightsFileName = "best_model_states.bin";

    private readonly EvaluationSettings _settings;
    private Tensor? _weights;

    public BestModel(EvaluationSettings settings) => _settings = settings;

    /// <summary>The best value of the metric so far, or null before the first evaluation.</summary>
    public double? Value { get; private set; }

    /// <summary>The optimizer step (counted from 1) whose weights gave <see cref="Value"/>.</summary>
    public long Step { get; private set; }

    /// <summary>Evaluations since the metric last improved by more than the early-stopping threshold.</summary>
    public int EvaluationsWithoutImprovement { get; private set; }

    /// <summary>Whether the early-stopping patience is used up.</summary>
    public bool PatienceExhausted => _settings.EarlyStoppingPatience > 0 && EvaluationsWithoutImprovement >= _settings.EarlyStoppingPatience;

    /// <summary>Records the evaluation of step <paramref name="step"/>; true when it is the best so far (a copy of its weights is kept if needed).</summary>
    public bool Record(ValidationMetrics metrics, long step, DataParallelEngine engine)
    {
        double value = metrics[_settings.MetricForBestModel];
        if (double.IsNaN(value))
            throw new InvalidOperationException($"The validation {ValidationMetrics.LogName(_settings.MetricForBestModel)} at step {step} is not a number.");
        bool greater = ValidationMetrics.GreaterIsBetter(_settings.MetricForBestModel);
        bool better = Value is not { } best || (greater ? value > best : value < best);
        // As Hugging Face: the best model moves on any improvement; patience resets only on one above the threshold.
        bool clearlyBetter = Value is not { } previous || (better && Math.Abs(value - previous) > _settings.EarlyStoppingThreshold);
        EvaluationsWithoutImprovement = clearlyBetter ? 0 : EvaluationsWithoutImprovement + 1;
        if (!better)
            return false;
        Value = value;
        Step = step;
        if (_settings.LoadBestModelAtEnd)
        {
            _weights?.Dispose();
            _weights = engine.CopyWeights();
        }
        return true;
    }

    /// <summary>Puts the best weights into the engine; false when the model already holds them (or none were kept).</summary>
    public bool Restore(DataParallelEngine engine, long currentStep)
    {
        if (_weights is null || Step == currentStep)
            return false;
        engine.LoadWeights(_weights);
        return true;
    }

    /// <summary>What a checkpoint keeps of this, beside <see cref="WriteWeights"/>.</summary>
    public TrainingState Describe(TrainingState state) =>
        state with { BestMetric = Value, BestStep = Step, EvaluationsWithoutImprovement = EvaluationsWithoutImprovement };

    /// <summary>Writes the best weights into a checkpoint folder, when they are kept.</summary>
    public void WriteWeights(string folder)
    {
        if (_weights is not null)
            File.WriteAllBytes(Path.Combine(folder, WeightsFileName), MemoryMarshal.AsBytes(TensorMemory.AsSpan(_weights)).ToArray());
    }

    /// <summary>Continues from a checkpoint's state and, when the run keeps the best weights, its weights file.</summary>
    public void Resume(TrainingState state, string folder, long parameterCount)
    {
        Value = state.BestMetric;
        Step = state.BestStep;
        EvaluationsWithoutImprovement = state.EvaluationsWithoutImprovement;
        if (!_settings.LoadBestModelAtEnd || Value is null)
            return;
        string path = Path.Combine(folder, WeightsFileName);
        if (!File.Exists(path))
            throw new InvalidDataException($"Checkpoint '{folder}' has no {WeightsFileName}, the best model's weights that LoadBestModelAtEnd returns to: " +
                "it was written by a run that did not keep them. Use a new CheckpointDirectory, or the options that run had.");
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length != parameterCount * sizeof(float))
            throw new InvalidDataException($"'{path}' holds {bytes.Length / sizeof(float)} values; the model has {parameterCount}.");
        _weights?.Dispose();
        _weights = tensor(MemoryMarshal.Cast<byte, float>(bytes).ToArray());
    }

    public void Dispose() => _weights?.Dispose();
}
