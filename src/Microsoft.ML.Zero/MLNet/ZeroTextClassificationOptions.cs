using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.Data;
namespace Microsoft.ML.Zero;

/// <summary>
/// Options of <see cref="ZeroTextClassificationTrainer"/>: fine-tunes a pretrained BERT (a local Hugging Face folder)
/// as a text classifier, data-parallel on <see cref="ZeroTrainingOptions.WorldSize"/> ranks. Names follow Microsoft.ML.TorchSharp's
/// TextClassificationTrainer.Options; DeepSpeed config keys are in brackets. Without <see cref="ZeroTrainingOptions.DeepSpeed"/>
/// settings it trains in <see cref="ZeroPrecision.Auto"/>: bf16 where the CPU computes it natively, else fp32.
/// </summary>
public sealed class ZeroTextClassificationOptions : ZeroTrainingOptions
{
    /// <summary>The first text column.</summary>
    public string Sentence1ColumnName = "Sentence1";

    /// <summary>The second text column for sentence-pair tasks (token type 1), or null.</summary>
    public string? Sentence2ColumnName;

    /// <summary>The Hugging Face BERT folder: config.json, vocab.txt, model.safetensors or pytorch_model.bin.</summary>
    public string? CheckpointPath;

    /// <summary>Tokens per row at most, [CLS] and [SEP] included; longer text is truncated. At most the model's max_position_embeddings.</summary>
    public int MaxSequenceLength = 128;

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

    internal ColumnOption Sentence1Column => new(Sentence1ColumnName, $"{nameof(ZeroTextClassificationOptions)}.{nameof(Sentence1ColumnName)}");

    internal ColumnOption? Sentence2Column =>
        Sentence2ColumnName is null ? null : new ColumnOption(Sentence2ColumnName, $"{nameof(ZeroTextClassificationOptions)}.{nameof(Sentence2ColumnName)}");

    internal void Validate()
    {
        ValidateTrainingOptions();
        Require(MaxSequenceLength >= 3, nameof(MaxSequenceLength), MaxSequenceLength, "at least 3 ([CLS], a token, [SEP])");
        // The limit a saved model's load checks (ModelLimits), so that what trains also loads.
        Require(ScoringBatchSize is >= 1 and <= ModelLimits.MaxSize, nameof(ScoringBatchSize), ScoringBatchSize, $"1 to {ModelLimits.MaxSize}");
        Require(GroupByLengthWindow >= 1, nameof(GroupByLengthWindow), GroupByLengthWindow, "at least 1 (global batches sorted by length together)");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "a finite number above 0");
        Require(WeightDecay is >= 0 and < double.PositiveInfinity, nameof(WeightDecay), WeightDecay, "a finite number of 0 or more");
        Require(!string.IsNullOrEmpty(CheckpointPath), nameof(CheckpointPath), CheckpointPath ?? "null", "the path of a Hugging Face BERT folder");
    }
}
