namespace Microsoft.ML.Zero;

/// <summary>
/// Options of <see cref="ZeroTrainer"/>: an MLP classifier over a numeric feature vector, trained data-parallel
/// (ZeRO stage 0) on <see cref="WorldSize"/> ranks. The names in brackets are the matching DeepSpeed config keys.
/// </summary>
public sealed class ZeroTrainerOptions
{
    /// <summary>The feature column: a known-size vector of Single.</summary>
    public string FeatureColumnName = "Features";

    /// <summary>The label column: a key type, as <c>MapValueToKey</c> produces.</summary>
    public string LabelColumnName = "Label";

    /// <summary>The output column of class probabilities (Vector&lt;Single, classes&gt;).</summary>
    public string ScoreColumnName = "Score";

    /// <summary>The output column of the predicted class (a key of the label's type).</summary>
    public string PredictedLabelColumnName = "PredictedLabel";

    /// <summary>Sizes of the hidden layers, input side first. Empty means a linear (softmax regression) model.</summary>
    public int[] HiddenLayerSizes = { 64 };

    /// <summary>The activation after each hidden layer.</summary>
    public MlpActivation Activation = MlpActivation.Relu;

    /// <summary>Dropout probability after each hidden activation during training, in [0, 1).</summary>
    public float Dropout;

    /// <summary>The number of data-parallel ranks run as threads of this process. Each holds a full replica.</summary>
    public int WorldSize = 1;

    /// <summary>
    /// Rows per rank in each micro-batch [<c>train_micro_batch_size_per_gpu</c>]. The global batch is
    /// BatchSize x gradient accumulation steps x WorldSize.
    /// </summary>
    public int BatchSize = 32;

    /// <summary>Passes over the training data.</summary>
    public int MaxEpochs = 10;

    /// <summary>The optimizer [<c>optimizer.type</c>].</summary>
    public ZeroOptimizer Optimizer = ZeroOptimizer.AdamW;

    /// <summary>Learning rate [<c>optimizer.params.lr</c>].</summary>
    public double LearningRate = 1e-3;

    /// <summary>AdamW's first-moment decay [<c>optimizer.params.betas[0]</c>].</summary>
    public double Beta1 = 0.9;

    /// <summary>AdamW's second-moment decay [<c>optimizer.params.betas[1]</c>].</summary>
    public double Beta2 = 0.999;

    /// <summary>AdamW's denominator term [<c>optimizer.params.eps</c>].</summary>
    public double Epsilon = 1e-8;

    /// <summary>Weight decay [<c>optimizer.params.weight_decay</c>].</summary>
    public double WeightDecay = 0.01;

    /// <summary>SGD momentum [<c>optimizer.params.momentum</c>].</summary>
    public double Momentum;

    /// <summary>Seeds the initial weights, the data order of every epoch and dropout: equal seeds give equal models.</summary>
    public int Seed;

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
    /// DeepSpeed-style engine settings: gradient accumulation, bf16/fp16 with loss scaling, clipping, optimizer and
    /// learning-rate schedule, typed or read from a ds_config with <see cref="ZeroOptions.FromDeepSpeedConfig"/>. Values
    /// it leaves unset or "auto" come from this object's options (BatchSize is the micro-batch per rank); null trains in fp32.
    /// </summary>
    public ZeroOptions? DeepSpeed;

    /// <summary>Rows scored together when the model transforms data.</summary>
    public int ScoringBatchSize = 256;

    /// <summary>Throws for an option outside its range, naming it and the expected values.</summary>
    internal void Validate()
    {
        Require(WorldSize >= 1, nameof(WorldSize), WorldSize, "at least 1");
        Require(BatchSize >= 1, nameof(BatchSize), BatchSize, "at least 1");
        Require(MaxEpochs >= 1, nameof(MaxEpochs), MaxEpochs, "at least 1");
        Require(ScoringBatchSize >= 1, nameof(ScoringBatchSize), ScoringBatchSize, "at least 1");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "a finite number above 0");
        Require(Beta1 is >= 0 and < 1, nameof(Beta1), Beta1, "in [0, 1)");
        Require(Beta2 is >= 0 and < 1, nameof(Beta2), Beta2, "in [0, 1)");
        Require(Epsilon > 0, nameof(Epsilon), Epsilon, "above 0");
        Require(WeightDecay >= 0, nameof(WeightDecay), WeightDecay, "0 or more");
        Require(Momentum >= 0, nameof(Momentum), Momentum, "0 or more");
        Require(Dropout is >= 0 and < 1, nameof(Dropout), Dropout, "in [0, 1)");
        Require(CheckpointEverySteps >= 0, nameof(CheckpointEverySteps), CheckpointEverySteps, "0 (none) or more");
        Require(KeepCheckpoints >= 1, nameof(KeepCheckpoints), KeepCheckpoints, "at least 1");
        Require(CheckpointEverySteps == 0 || !string.IsNullOrWhiteSpace(CheckpointDirectory), nameof(CheckpointDirectory), CheckpointDirectory ?? "null",
            "a folder when CheckpointEverySteps is above 0");
        Require(Enum.IsDefined(Sharding), nameof(Sharding), Sharding, string.Join(" or ", Enum.GetNames<ZeroDataSharding>()));
        Require(CommunicationTimeout > TimeSpan.Zero, nameof(CommunicationTimeout), CommunicationTimeout, "above zero");
        Require(HiddenLayerSizes is not null, nameof(HiddenLayerSizes), "null", "an array (empty for no hidden layer)");
        for (int i = 0; i < HiddenLayerSizes!.Length; i++)
            Require(HiddenLayerSizes[i] >= 1, $"{nameof(HiddenLayerSizes)}[{i}]", HiddenLayerSizes[i], "at least 1");
        Require(Enum.IsDefined(Optimizer), nameof(Optimizer), Optimizer, string.Join(" or ", Enum.GetNames<ZeroOptimizer>()));
        Require(Enum.IsDefined(Activation), nameof(Activation), Activation, string.Join(" or ", Enum.GetNames<MlpActivation>()));
    }

    internal RunValues Run => new(MaxEpochs, Seed, Sharding, CheckpointDirectory, CheckpointEverySteps, KeepCheckpoints);

    private static void Require(bool condition, string option, object value, string expected) =>
        OptionCheck.Require(condition, "ZeroTrainerOptions." + option, value, expected);
}
