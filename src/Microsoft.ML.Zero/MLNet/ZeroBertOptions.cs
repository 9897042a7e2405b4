using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Models.Bert;
namespace Microsoft.ML.Zero;

/// <summary>
/// What every BERT fine-tune takes besides the shared training options: the Hugging Face folder, the text columns,
/// tokenization and long texts, AdamW's rate and decay, length grouping and scoring batches. Names follow
/// Microsoft.ML.TorchSharp's trainers; DeepSpeed config keys are in brackets. Without <see cref="ZeroTrainingOptions.DeepSpeed"/>
/// settings a fine-tune trains in <see cref="ZeroPrecision.Auto"/>: bf16 where the CPU computes it natively, else fp32.
/// </summary>
public abstract class ZeroBertOptions : ZeroTrainingOptions
{
    private protected ZeroBertOptions()
    {
    }

    /// <summary>The first text column.</summary>
    public string Sentence1ColumnName = "Sentence1";

    /// <summary>The second text column for sentence-pair tasks (token type 1), or null.</summary>
    public string? Sentence2ColumnName;

    /// <summary>The Hugging Face BERT folder: config.json, vocab.txt, model.safetensors or pytorch_model.bin.</summary>
    public string? CheckpointPath;

    /// <summary>
    /// Tokens per row at most, [CLS] and [SEP] included [Hugging Face tokenizers' <c>max_length</c>]; longer text is
    /// read as <see cref="LongTextHandling"/> says. At most the model's max_position_embeddings.
    /// </summary>
    public int MaxSequenceLength = 128;

    /// <summary>
    /// How text longer than <see cref="MaxSequenceLength"/> is read, in training and scoring alike (the saved model
    /// records it): <see cref="ZeroLongTextHandling.Truncate"/> (the default) keeps the first tokens;
    /// <see cref="ZeroLongTextHandling.HeadAndTail"/> a quarter from the head and the rest from the tail;
    /// <see cref="ZeroLongTextHandling.SlidingWindows"/> reads the whole text in windows overlapping by
    /// <see cref="WindowStride"/> tokens and averages the windows' logits per row. The last two cut only the first
    /// text: a <see cref="Sentence2ColumnName"/> text is kept whole in every window (<c>truncation="only_first"</c>).
    /// </summary>
    public ZeroLongTextHandling LongTextHandling = ZeroLongTextHandling.Truncate;

    /// <summary>
    /// With <see cref="ZeroLongTextHandling.SlidingWindows"/>, the tokens two consecutive windows of a row share
    /// [Hugging Face tokenizers' <c>stride</c>]: 0 (the default, as there) to MaxSequenceLength - 3 (- 4 for pairs), so that
    /// each window moves on; 0 with the other handlings.
    /// </summary>
    public int WindowStride;

    /// <summary>
    /// With <see cref="ZeroLongTextHandling.SlidingWindows"/>, the most windows a row is read in; a row that needs more
    /// is read in its first MaxWindowsPerRow windows and the rest of its text is dropped, as truncation drops it. A
    /// training micro-batch forwards up to BatchSize x MaxWindowsPerRow windows together, so this bounds its memory;
    /// scoring forwards at most ScoringBatchSize windows at a time.
    /// </summary>
    public int MaxWindowsPerRow = 8;

    /// <summary>AdamW learning rate [<c>optimizer.params.lr</c>].</summary>
    public double LearningRate = 5e-5;

    /// <summary>AdamW weight decay [<c>optimizer.params.weight_decay</c>]; biases and LayerNorm weights are not decayed.</summary>
    public double WeightDecay = OptimizerDefaults.WeightDecay;

    /// <summary>
    /// Puts rows of about the same token count into the same batches, so that padding each micro-batch to its longest row
    /// adds few tokens [Hugging Face's <c>group_by_length</c>]. The order stays random: the epoch's shuffled rows are
    /// taken <see cref="GroupByLengthWindow"/> global batches at a time, each window is sorted by token count and cut
    /// into global batches, and the batches are shuffled; every rank's micro-batch of a step comes from the same batch.
    /// The rows are tokenized once more before training to count their tokens. With
    /// <see cref="ZeroDataSharding.InputPerRank"/> each rank groups its own rows, in batches of its rows of a step.
    /// </summary>
    public bool GroupByLength;

    /// <summary>
    /// Global batches sorted by length together when <see cref="GroupByLength"/> is on (Hugging Face's megabatch of 50
    /// batches); as Hugging Face's LengthGroupedSampler, a window is at most a quarter of an epoch's batches.
    /// </summary>
    public int GroupByLengthWindow = LengthGroupedOrder.DefaultWindowBatches;

    /// <summary>Rows scored together when the model transforms data.</summary>
    public int ScoringBatchSize = 64;

    internal ColumnOption Sentence1Column => new(Sentence1ColumnName, $"{GetType().Name}.{nameof(Sentence1ColumnName)}");

    internal ColumnOption? Sentence2Column =>
        Sentence2ColumnName is null ? null : new ColumnOption(Sentence2ColumnName, $"{GetType().Name}.{nameof(Sentence2ColumnName)}");

    internal BertLongText LongText => new(LongTextHandling, WindowStride, LongTextHandling == ZeroLongTextHandling.SlidingWindows ? MaxWindowsPerRow : 1);

    private protected void ValidateBertOptions()
    {
        ValidateTrainingOptions();
        Require(MaxSequenceLength >= 3, nameof(MaxSequenceLength), MaxSequenceLength, "at least 3 ([CLS], a token, [SEP])");
        // The limit a saved model's load checks (ModelLimits), so that what trains also loads.
        Require(ScoringBatchSize is >= 1 and <= ModelLimits.MaxSize, nameof(ScoringBatchSize), ScoringBatchSize, $"1 to {ModelLimits.MaxSize}");
        Require(GroupByLengthWindow >= 1, nameof(GroupByLengthWindow), GroupByLengthWindow, "at least 1 (global batches sorted by length together)");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "a finite number above 0");
        Require(WeightDecay is >= 0 and < double.PositiveInfinity, nameof(WeightDecay), WeightDecay, "a finite number of 0 or more");
        Require(Enum.IsDefined(LongTextHandling), nameof(LongTextHandling), LongTextHandling, string.Join(" or ", Enum.GetNames<ZeroLongTextHandling>()));
        int maxStride = LongTextHandling == ZeroLongTextHandling.SlidingWindows ? BertLongText.MaxStride(MaxSequenceLength, Sentence2ColumnName is not null) : 0;
        Require(WindowStride >= 0 && WindowStride <= maxStride, nameof(WindowStride), WindowStride, LongTextHandling == ZeroLongTextHandling.SlidingWindows
            ? $"0 to {maxStride}: fewer than the {maxStride + 1} tokens of the first text a window of MaxSequenceLength {MaxSequenceLength} holds, so that each window moves on"
            : $"0 unless LongTextHandling is {nameof(ZeroLongTextHandling.SlidingWindows)} (it is {LongTextHandling})");
        Require(MaxWindowsPerRow is >= 1 and <= ModelLimits.MaxSize, nameof(MaxWindowsPerRow), MaxWindowsPerRow, $"1 to {ModelLimits.MaxSize}");
        Require(!string.IsNullOrEmpty(CheckpointPath), nameof(CheckpointPath), CheckpointPath ?? "null", "the path of a Hugging Face BERT folder");
    }
}
