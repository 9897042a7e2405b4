using System.ComponentModel;
using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.Data;
namespace Microsoft.ML.Zero;

/// <summary>
/// Options of <see cref="ZeroTrainer"/>: an MLP classifier over a numeric feature vector, trained data-parallel
/// (ZeRO stage 0) on <see cref="ZeroTrainingOptions.WorldSize"/> ranks. The names in brackets are the matching DeepSpeed config keys.
/// </summary>
public sealed class ZeroTrainerOptions : ZeroTrainingOptions
{
    /// <summary>The MLP trainer's options: a constant learning rate unless <see cref="ZeroTrainingOptions.LearningRateSchedulerType"/> or a DeepSpeed scheduler says otherwise.</summary>
    public ZeroTrainerOptions() => LearningRateSchedulerType = ZeroSchedulerType.Constant;

    /// <summary>The feature column: a known-size vector of Single.</summary>
    public string FeatureColumnName = "Features";

    /// <summary>The former name of <see cref="ZeroTrainingOptions.PredictionColumnName"/>.</summary>
    [Obsolete("Use PredictionColumnName, the name both trainers' options and Microsoft.ML.TorchSharp's use.")]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public string PredictedLabelColumnName { get => PredictionColumnName; set => PredictionColumnName = value; }

    /// <summary>
    /// A user-defined TorchSharp module to train instead of the MLP, with how to feed it and score its output; null
    /// trains the MLP that <see cref="HiddenLayerSizes"/>, <see cref="Activation"/> and <see cref="Dropout"/> describe.
    /// </summary>
    public ZeroModelFactory? ModelFactory;

    /// <summary>Sizes of the hidden layers, input side first. Empty means a linear (softmax regression) model.</summary>
    public int[] HiddenLayerSizes = { 64 };

    /// <summary>The activation after each hidden layer.</summary>
    public MlpActivation Activation = MlpActivation.Relu;

    /// <summary>Dropout probability after each hidden activation during training, in [0, 1).</summary>
    public float Dropout;

    /// <summary>The optimizer [<c>optimizer.type</c>].</summary>
    public ZeroOptimizer Optimizer = ZeroOptimizer.AdamW;

    /// <summary>Learning rate [<c>optimizer.params.lr</c>].</summary>
    public double LearningRate = OptimizerDefaults.LearningRate;

    /// <summary>AdamW's first-moment decay [<c>optimizer.params.betas[0]</c>].</summary>
    public double Beta1 = OptimizerDefaults.Beta1;

    /// <summary>AdamW's second-moment decay [<c>optimizer.params.betas[1]</c>].</summary>
    public double Beta2 = OptimizerDefaults.Beta2;

    /// <summary>AdamW's denominator term [<c>optimizer.params.eps</c>].</summary>
    public double Epsilon = OptimizerDefaults.Epsilon;

    /// <summary>Weight decay [<c>optimizer.params.weight_decay</c>].</summary>
    public double WeightDecay = OptimizerDefaults.WeightDecay;

    /// <summary>SGD momentum [<c>optimizer.params.momentum</c>].</summary>
    public double Momentum;

    /// <summary>Rows scored together when the model transforms data.</summary>
    public int ScoringBatchSize = 256;

    internal ColumnOption FeatureColumn => new(FeatureColumnName, $"{nameof(ZeroTrainerOptions)}.{nameof(FeatureColumnName)}");

    /// <summary>Throws for an option outside its range, naming it and the expected values.</summary>
    internal void Validate()
    {
        ValidateTrainingOptions();
        Require(Monitoring.ValidationMetrics.IsClassification(MetricForBestModel), nameof(MetricForBestModel), MetricForBestModel,
            "a classifier's metric: Accuracy, MacroF1 or LogLoss");
        // The limits a saved model's load checks (ModelLimits), so that what trains also loads.
        Require(ScoringBatchSize is >= 1 and <= ModelLimits.MaxSize, nameof(ScoringBatchSize), ScoringBatchSize, $"1 to {ModelLimits.MaxSize}");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "a finite number above 0");
        Require(Beta1 is >= 0 and < 1, nameof(Beta1), Beta1, "in [0, 1)");
        Require(Beta2 is >= 0 and < 1, nameof(Beta2), Beta2, "in [0, 1)");
        Require(Epsilon is > 0 and < double.PositiveInfinity, nameof(Epsilon), Epsilon, "a finite number above 0");
        Require(WeightDecay is >= 0 and < double.PositiveInfinity, nameof(WeightDecay), WeightDecay, "a finite number of 0 or more");
        Require(Momentum is >= 0 and < double.PositiveInfinity, nameof(Momentum), Momentum, "a finite number of 0 or more");
        Require(Dropout is >= 0 and < 1, nameof(Dropout), Dropout, "in [0, 1)");
        Require(HiddenLayerSizes is not null, nameof(HiddenLayerSizes), "null", "an array (empty for no hidden layer)");
        Require(HiddenLayerSizes!.Length <= ModelLimits.MaxLayers, $"{nameof(HiddenLayerSizes)}.Length", HiddenLayerSizes.Length, $"at most {ModelLimits.MaxLayers}");
        for (int i = 0; i < HiddenLayerSizes.Length; i++)
            Require(HiddenLayerSizes[i] is >= 1 and <= ModelLimits.MaxSize, $"{nameof(HiddenLayerSizes)}[{i}]", HiddenLayerSizes[i], $"1 to {ModelLimits.MaxSize}");
        Require(Enum.IsDefined(Optimizer), nameof(Optimizer), Optimizer, string.Join(" or ", Enum.GetNames<ZeroOptimizer>()));
        Require(Enum.IsDefined(Activation), nameof(Activation), Activation, string.Join(" or ", Enum.GetNames<MlpActivation>()));
        if (ModelFactory is not null)
        {
            ZeroModelFactory.RequireLoadable(ModelFactory.GetType(), $"{nameof(ZeroTrainerOptions)}.{nameof(ModelFactory)}", nameof(ModelFactory));
            var defaults = new ZeroTrainerOptions();
            var mlpOptions = new[]
            {
                (nameof(HiddenLayerSizes), !HiddenLayerSizes.SequenceEqual(defaults.HiddenLayerSizes)),
                (nameof(Activation), Activation != defaults.Activation),
                (nameof(Dropout), Dropout != defaults.Dropout),
            }.Where(o => o.Item2).Select(o => o.Item1).ToList();
            if (mlpOptions.Count > 0)
                throw new ArgumentException($"ZeroTrainerOptions.{string.Join(", ", mlpOptions)} shape the built-in MLP, but ModelFactory " +
                    $"({ModelFactory.GetType().Name}) builds the model: leave them at their defaults.", mlpOptions[0]);
            // The loss options shape the default loss; an overridden LossSum is the user's own.
            if (ModelFactory.OverridesLossSum && (ClassWeights is not null || LabelSmoothingFactor != 0))
                throw new ArgumentException($"ZeroTrainerOptions.{(ClassWeights is not null ? nameof(ClassWeights) : nameof(LabelSmoothingFactor))} shapes the default " +
                    $"cross-entropy loss, but ModelFactory ({ModelFactory.GetType().Name}) overrides LossSum: weight or smooth the loss there, and leave " +
                    "ClassWeights null and LabelSmoothingFactor 0.", ClassWeights is not null ? nameof(ClassWeights) : nameof(LabelSmoothingFactor));
        }
    }
}
