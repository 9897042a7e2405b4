using static TorchSharp.torch;
using Microsoft.ML.Zero.Models.Bert;

namespace Microsoft.ML.Zero.Loop;

/// <summary>
/// A rank's sentences of one epoch for token classification, each as its tokens and a label per token: a word's tag
/// on its first sub-token, <see cref="Ignored"/> on the other sub-tokens, [CLS], [SEP] and padding. The loss of a slice
/// is the cross-entropy summed over its labelled tokens (Hugging Face's BertForTokenClassification averages them
/// instead; the engine divides a step's sum by its sentences, so the loss reads per sentence).
/// </summary>
internal sealed class TokenEpochShard : IEpochShard
{
    /// <summary>The label of a token left out of the loss: PyTorch's and Hugging Face's ignore index.</summary>
    public const long Ignored = -100;

    private readonly BertTokenClassifier _model;
    private readonly (int[] Ids, long[] TokenLabels)[] _rows;
    private readonly int _paddingId;
    private readonly ClassificationLoss _loss;

    public TokenEpochShard(BertTokenClassifier model, (int[] Ids, long[] TokenLabels)[] rows, int paddingId, ClassificationLoss loss)
    {
        _model = model;
        _rows = rows;
        _paddingId = paddingId;
        _loss = loss;
    }

    public int Count => _rows.Length;

    /// <summary>
    /// Each token's label in <paramref name="row"/>: word i's zero-based tag (<paramref name="tags"/>, -1 for none) on
    /// its first sub-token, <see cref="Ignored"/> elsewhere.
    /// </summary>
    public static long[] TokenLabels(BertWordRow row, int[] tags)
    {
        var labels = new long[row.Ids.Length];
        Array.Fill(labels, Ignored);
        for (int word = 0; word < row.WordStarts.Length; word++)
            labels[row.WordStarts[word]] = tags[word] < 0 ? Ignored : tags[word];
        return labels;
    }

    public Tensor LossSum(int start, int count)
    {
        var slice = new ArraySegment<(int[] Ids, long[] TokenLabels)>(_rows, start, count);
        var batch = BertCollator.Collate(slice.Select(row => (row.Ids, new int[row.Ids.Length])).ToList(), 0, count, _paddingId);
        long tokens = batch.InputIds.shape[1];
        var labels = new long[count * tokens];
        Array.Fill(labels, Ignored);
        for (int row = 0; row < count; row++)
            slice[row].TokenLabels.CopyTo(labels, row * tokens);
        using var target = tensor(labels);
        var logits = _model.forward(batch);
        return _loss.Sum(logits.reshape(-1, _model.TagCount), target);
    }
}
