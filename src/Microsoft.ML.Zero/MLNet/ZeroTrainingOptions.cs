using System.ComponentModel;
using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Loop;
namespace Microsoft.ML.Zero;

/// <summary>
/// What every Microsoft.ML.Zero trainer shares: the ranks, batch and epochs, the seed, checkpoints, how the ranks divide
/// the data, and the DeepSpeed-style engine settings. The names in brackets are the matching DeepSpeed config keys.
/// </summary>
public abstract class ZeroTrainingOptions
{
    private protected ZeroTrainingOptions()
    {
    }

    /// <summary>The label column: a key type, as <c>MapValueToKey</c> produces.</summary>
    public string LabelColumnName = "Label";

    /// <summary>The output column of class probabilities (Vector&lt;Single, classes&gt;, the label's values as slot names).</summary>
    public string ScoreColumnName = "Score";

    /// <summary>The output column of the predicted class (a key of the label's type).</summary>
    public string PredictionColumnName = "PredictedLabel";

    /// <summary>
    /// The number of data-parallel ranks run as threads of this process; each holds a full replica. Under mpirun each
    /// process is one rank: leave it at 1 or set it to the job's size.
    /// </summary>
    public int WorldSize = 1;

    /// <summary>
    /// Rows per rank in each micro-batch [<c>train_micro_batch_size_per_gpu</c>]. The global batch is
    /// BatchSize x gradient accumulation steps x WorldSize.
    /// </summary>
    public int BatchSize = 32;

    /// <summary>Passes over the training data.</summary>
    public int MaxEpoch = 10;

    /// <summary>The former name of <see cref="MaxEpoch"/>.</summary>
    [Obsolete("Use MaxEpoch, the name Microsoft.ML.TorchSharp's trainer options use.")]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public int MaxEpochs { get => MaxEpoch; set => MaxEpoch = value; }

    /// <summary>
    /// Seeds the initial weights, the data order of every epoch and dropout: equal seeds give equal models. Left unset,
    /// the trainer takes the seed of its MLContext (<c>new MLContext(seed: N)</c>), as ML.NET's trainers do; when the
    /// context has none either, 0, so that a run is reproducible all the same.
    /// </summary>
    public int? Seed;

    /// <summary>How long a rank waits in a collective for the others before failing with a message naming them.</summary>
    public TimeSpan CommunicationTimeout = TimeSpan.FromMinutes(5);

    /// <summary>
    /// A folder for checkpoints (DeepSpeed's layout: <c>global_step{N}/</c> and a <c>latest</c> file). When it holds
    /// one, Fit resumes from it: same weights, optimizer state, loss scale, schedule position, random streams and place
    /// in the data, so the run ends as if never stopped. Under mpirun it must be a folder every process can reach.
    /// </summary>
    public string? CheckpointDirectory;

    /// <summary>Write a checkpoint every this many optimizer steps; 0 writes none (a present checkpoint is still resumed).</summary>
    public int CheckpointEverySteps;

    /// <summary>Checkpoints kept; older ones are deleted after each new one is complete.</summary>
    public int KeepCheckpoints = 2;

    /// <summary>How the ranks divide the rows: the same data split by position (default), or each rank's own input.</summary>
    public ZeroDataSharding Sharding = ZeroDataSharding.SplitRows;

    /// <summary>
    /// Data scored during training, when <see cref="EvaluationStrategy"/> says: its metrics (accuracy, macro F1,
    /// log-loss) go to the log, the progress bar and the csv_monitor/tensorboard files. It needs the model's input
    /// columns and the label keyed as the training data's (the same fitted MapValueToKey). The ranks score disjoint
    /// shares of it at once and add their counts, so the metrics are exact over every row.
    /// </summary>
    public IDataView? ValidationSet;

    /// <summary>When <see cref="ValidationSet"/> is scored [Hugging Face's <c>eval_strategy</c>]: after every epoch (default), every <see cref="EvaluationSteps"/> steps, or never.</summary>
    public ZeroEvaluationStrategy EvaluationStrategy = ZeroEvaluationStrategy.Epoch;

    /// <summary>Optimizer steps between evaluations with <see cref="ZeroEvaluationStrategy.Steps"/> [<c>eval_steps</c>]; the last step is evaluated too.</summary>
    public int EvaluationSteps;

    /// <summary>The metric that names the best model and drives early stopping [<c>metric_for_best_model</c>]; higher is better except for log-loss.</summary>
    public ZeroMetric MetricForBestModel = ZeroMetric.Accuracy;

    /// <summary>
    /// End training with the weights of the best evaluation by <see cref="MetricForBestModel"/> rather than the last step's
    /// [<c>load_best_model_at_end</c>]. The best weights are kept in memory (and in checkpoints, so a resumed run keeps them).
    /// </summary>
    public bool LoadBestModelAtEnd;

    /// <summary>
    /// Stop training after this many evaluations in a row without an improvement of <see cref="MetricForBestModel"/> above
    /// <see cref="EarlyStoppingThreshold"/> [Hugging Face's EarlyStoppingCallback <c>early_stopping_patience</c>]; 0 never stops early.
    /// </summary>
    public int EarlyStoppingPatience;

    /// <summary>How much the metric must improve on the best so far to count as an improvement [<c>early_stopping_threshold</c>].</summary>
    public double EarlyStoppingThreshold;

    /// <summary>
    /// DeepSpeed-style engine settings: gradient accumulation, bf16/fp16 with loss scaling, clipping, optimizer and
    /// learning-rate schedule, typed or read from a ds_config with <see cref="DeepSpeedOptions.FromDeepSpeedConfig"/>. Values
    /// it leaves unset or "auto" come from this object's options (BatchSize is the micro-batch per rank); null trains in fp32.
    /// </summary>
    public DeepSpeedOptions? DeepSpeed;

    /// <summary>
    /// The learning-rate schedule when <see cref="DeepSpeed"/> has no <c>scheduler</c> block [Hugging Face's
    /// <c>lr_scheduler_type</c>]. <see cref="ZeroSchedulerType.Linear"/>, the default here (as in Hugging Face's Trainer),
    /// warms up linearly from 0 over <see cref="WarmupRatio"/> of the run's optimizer steps, then decays linearly to 0 at
    /// the last one; <see cref="ZeroSchedulerType.Constant"/>, ZeroTrainerOptions' default, keeps the rate flat. A
    /// DeepSpeed <c>scheduler</c> replaces it; setting both to different things is an error.
    /// </summary>
    public ZeroSchedulerType LearningRateSchedulerType = ZeroSchedulerType.Linear;

    /// <summary>
    /// The share of the run's optimizer steps (rounded up) the <see cref="ZeroSchedulerType.Linear"/> schedule warms up
    /// over, in [0, 1]; also the warm-up a DeepSpeed scheduler's <c>"warmup_num_steps": "auto"</c> takes [Hugging Face's
    /// <c>warmup_ratio</c>]. 0.06, Microsoft.ML.TorchSharp's warm-up.
    /// </summary>
    public double WarmupRatio = 0.06;

    /// <summary>
    /// How much each class counts in the loss: null (every class 1), one weight per class in the label's key order
    /// (<c>new ZeroClassWeights(1, 9)</c>), or <see cref="ZeroClassWeights.Balanced"/> (scikit-learn's "balanced") [PyTorch
    /// cross_entropy's <c>weight</c>]. The reported loss is the weighted cross-entropy per row: balanced weights average 1
    /// over the training rows, so they keep its scale.
    /// </summary>
    public ZeroClassWeights? ClassWeights;

    /// <summary>
    /// Label smoothing in [0, 1]: each row's target keeps 1 - factor on its class and spreads factor evenly over all
    /// classes [Hugging Face's <c>label_smoothing_factor</c>, PyTorch cross_entropy's <c>label_smoothing</c>]. 0 turns it off.
    /// </summary>
    public double LabelSmoothingFactor;

    /// <summary>
    /// What the process holding rank 0 shows on the console: by default a live progress bar on a terminal and plain log
    /// lines when output is redirected. Log messages also go to <c>MLContext.Log</c> whatever this says.
    /// </summary>
    public ZeroProgress Progress = ZeroProgress.Auto;

    internal ColumnOption LabelColumn => new(LabelColumnName, $"{GetType().Name}.{nameof(LabelColumnName)}");

    /// <summary>The seed a run uses: <see cref="Seed"/>, else the MLContext's seed, else 0.</summary>
    internal int ResolveSeed(int? contextSeed) => Seed ?? contextSeed ?? 0;

    internal RunValues Run(int seed) => new(MaxEpoch, seed, Sharding, CheckpointDirectory, CheckpointEverySteps, KeepCheckpoints, Progress,
        new EvaluationSettings(EvaluationStrategy, EvaluationSteps, MetricForBestModel, LoadBestModelAtEnd, EarlyStoppingPatience, EarlyStoppingThreshold));

    /// <summary>Throws for a shared option outside its range, naming it and the expected values.</summary>
    private protected void ValidateTrainingOptions()
    {
        Require(WorldSize >= 1, nameof(WorldSize), WorldSize, "at least 1");
        Require(BatchSize >= 1, nameof(BatchSize), BatchSize, "at least 1");
        Require(MaxEpoch >= 1, nameof(MaxEpoch), MaxEpoch, "at least 1");
        Require(CheckpointEverySteps >= 0, nameof(CheckpointEverySteps), CheckpointEverySteps, "0 (none) or more");
        Require(KeepCheckpoints >= 1, nameof(KeepCheckpoints), KeepCheckpoints, "at least 1");
        Require(CheckpointEverySteps == 0 || !string.IsNullOrWhiteSpace(CheckpointDirectory), nameof(CheckpointDirectory), CheckpointDirectory ?? "null",
            "a folder when CheckpointEverySteps is above 0");
        Require(Enum.IsDefined(Sharding), nameof(Sharding), Sharding, string.Join(" or ", Enum.GetNames<ZeroDataSharding>()));
        Require(Enum.IsDefined(Progress), nameof(Progress), Progress, string.Join(" or ", Enum.GetNames<ZeroProgress>()));
        Require(CommunicationTimeout > TimeSpan.Zero, nameof(CommunicationTimeout), CommunicationTimeout, "above zero");
        Require(Enum.IsDefined(EvaluationStrategy), nameof(EvaluationStrategy), EvaluationStrategy, string.Join(" or ", Enum.GetNames<ZeroEvaluationStrategy>()));
        Require(EvaluationStrategy != ZeroEvaluationStrategy.Steps || EvaluationSteps >= 1, nameof(EvaluationSteps), EvaluationSteps,
            "at least 1 with EvaluationStrategy = Steps");
        Require(EvaluationSteps >= 0, nameof(EvaluationSteps), EvaluationSteps, "0 or more");
        Require(Enum.IsDefined(MetricForBestModel), nameof(MetricForBestModel), MetricForBestModel, string.Join(" or ", Enum.GetNames<ZeroMetric>()));
        Require(EarlyStoppingPatience >= 0, nameof(EarlyStoppingPatience), EarlyStoppingPatience, "0 (never stop early) or more");
        Require(EarlyStoppingThreshold is >= 0 and < double.PositiveInfinity, nameof(EarlyStoppingThreshold), EarlyStoppingThreshold, "a finite number of 0 or more");
        // Both need evaluations to act on.
        foreach (var (option, on) in new[] { (nameof(LoadBestModelAtEnd), LoadBestModelAtEnd), (nameof(EarlyStoppingPatience), EarlyStoppingPatience > 0) })
        {
            Require(!on || ValidationSet is not null, nameof(ValidationSet), "null", $"a validation set when {option} is set");
            Require(!on || EvaluationStrategy != ZeroEvaluationStrategy.No, nameof(EvaluationStrategy), EvaluationStrategy, $"Epoch or Steps when {option} is set");
        }
        Require(Enum.IsDefined(LearningRateSchedulerType), nameof(LearningRateSchedulerType), LearningRateSchedulerType, string.Join(" or ", Enum.GetNames<ZeroSchedulerType>()));
        Require(WarmupRatio is >= 0 and <= 1, nameof(WarmupRatio), WarmupRatio, "in [0, 1]");
        Require(LabelSmoothingFactor is >= 0 and <= 1, nameof(LabelSmoothingFactor), LabelSmoothingFactor, "in [0, 1]");
        ClassWeights?.Validate(GetType().Name + "." + nameof(ClassWeights));
    }

    /// <summary>An out-of-range error naming the option as <c>TypeName.Option</c>.</summary>
    private protected void Require(bool condition, string option, object value, string expected) =>
        OptionCheck.Require(condition, GetType().Name + "." + option, value, expected);
}
