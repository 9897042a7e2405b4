namespace Microsoft.ML.Zero;

/// <summary>
/// Options of <see cref="ZeroTextClassificationTrainer"/>: fine-tunes a pretrained BERT (a local Hugging Face folder)
/// as a text classifier, data-parallel on <see cref="WorldSize"/> ranks. Names follow Microsoft.ML.TorchSharp's
/// TextClassificationTrainer.Options; DeepSpeed config keys are in brackets.
/// </summary>
public sealed class ZeroTextClassificationOptions
{
    /// <summary>The first text column.</summary>
    public string Sentence1ColumnName = "Sentence1";

    /// <summary>The second text column for sentence-pair tasks (token type 1), or null.</summary>
    public string? Sentence2ColumnName;

    /// <summary>The label column: a key type, as <c>MapValueToKey</c> produces.</summary>
    public string LabelColumnName = "Label";

    /// <summary>The output column of class probabilities.</summary>
    public string ScoreColumnName = "Score";

    /// <summary>The output column of the predicted class.</summary>
    public string PredictionColumnName = "PredictedLabel";

    /// <summary>The Hugging Face BERT folder: config.json, vocab.txt, model.safetensors or pytorch_model.bin.</summary>
    public string? CheckpointPath;

    /// <summary>
    /// Rows per rank in each micro-batch [<c>train_micro_batch_size_per_gpu</c>]. The global batch is
    /// BatchSize x gradient accumulation steps x WorldSize.
    /// </summary>
    public int BatchSize = 32;

    /// <summary>Passes over the training data.</summary>
    public int MaxEpochs = 10;

    /// <summary>Data scored after every epoch; its accuracy is logged.</summary>
    public IDataView? ValidationSet;

    /// <summary>Tokens per row at most, [CLS] and [SEP] included; longer text is truncated. At most the model's max_position_embeddings.</summary>
    public int MaxSequenceLength = 128;

    /// <summary>The number of data-parallel ranks run as threads of this process.</summary>
    public int WorldSize = 1;

    /// <summary>AdamW learning rate [<c>optimizer.params.lr</c>].</summary>
    public double LearningRate = 5e-5;

    /// <summary>AdamW weight decay [<c>optimizer.params.weight_decay</c>]; biases and LayerNorm weights are not decayed.</summary>
    public double WeightDecay = 0.01;

    /// <summary>Seeds the classifier head, the data order and dropout.</summary>
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
    public int ScoringBatchSize = 64;

    internal void Validate()
    {
        Require(WorldSize >= 1, nameof(WorldSize), WorldSize, "at least 1");
        Require(BatchSize >= 1, nameof(BatchSize), BatchSize, "at least 1");
        Require(MaxEpochs >= 1, nameof(MaxEpochs), MaxEpochs, "at least 1");
        Require(MaxSequenceLength >= 3, nameof(MaxSequenceLength), MaxSequenceLength, "at least 3 ([CLS], a token, [SEP])");
        Require(ScoringBatchSize >= 1, nameof(ScoringBatchSize), ScoringBatchSize, "at least 1");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "a finite number above 0");
        Require(WeightDecay >= 0, nameof(WeightDecay), WeightDecay, "0 or more");
        Require(CheckpointEverySteps >= 0, nameof(CheckpointEverySteps), CheckpointEverySteps, "0 (none) or more");
        Require(KeepCheckpoints >= 1, nameof(KeepCheckpoints), KeepCheckpoints, "at least 1");
        Require(CheckpointEverySteps == 0 || !string.IsNullOrWhiteSpace(CheckpointDirectory), nameof(CheckpointDirectory), CheckpointDirectory ?? "null",
            "a folder when CheckpointEverySteps is above 0");
        Require(Enum.IsDefined(Sharding), nameof(Sharding), Sharding, string.Join(" or ", Enum.GetNames<ZeroDataSharding>()));
        Require(CommunicationTimeout > TimeSpan.Zero, nameof(CommunicationTimeout), CommunicationTimeout, "above zero");
        Require(!string.IsNullOrEmpty(CheckpointPath), nameof(CheckpointPath), CheckpointPath ?? "null", "the path of a Hugging Face BERT folder");
    }

    internal RunValues Run => new(MaxEpochs, Seed, Sharding, CheckpointDirectory, CheckpointEverySteps, KeepCheckpoints);

    private static void Require(bool condition, string option, object value, string expected) =>
        OptionCheck.Require(condition, "ZeroTextClassificationOptions." + option, value, expected);
}
