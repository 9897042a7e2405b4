using static TorchSharp.torch;
using Microsoft.ML.Zero.Models.Bert;

namespace Microsoft.ML.Zero.Loop;

/// <summary>
/// A rank's sentences of one epoch for token classification, each as its windows (one unless sliding windows cut it),
/// each window as its tokens and a label per token: a word's tag on its first sub-token, <see cref="Ignored"/> on the
/// other sub-tokens, [CLS], [SEP] and padding. Every window trains, so a word two windows hold counts in both (as
/// Hugging Face's overflowing windows train). The loss of a slice is the cross-entropy summed over its labelled tokens
/// (Hugging Face's BertForTokenClassification averages them instead; the engine divides a step's sum by its sentences,
/// so the loss reads per sentence); a slice forwards all the windows of its sentences together.
/// </summary>
internal sealed class TokenEpochShard : IEpochShard
{
    /// <summary>The label of a token left out of the loss: PyTorch's and Hugging Face's ignore index.</summary>
    public const long Ignored = -100;

    private readonly BertTokenClassifier _model;
    private readonly (int[] Ids, long[] TokenLabels)[][] _rows;
    private readonly int _paddingId;
    private readonly ClassificationLoss _loss;

    public TokenEpochShard(BertTokenClassifier model, (int[] Ids, long[] TokenLabels)[][] rows, int paddingId, ClassificationLoss loss)
    {
        _model = model;
        _rows = rows;
        _paddingId = paddingId;
        _loss = loss;
    }

    public int Count => _rows.Length;

    /// <summary>
    /// Each token's label in each window of <paramref name="row"/>: word i's zero-based tag (<paramref name="tags"/>,
    /// -1 for none) on its first sub-token, <see cref="Ignored"/> elsewhere.
    /// </summary>
    public static (int[] Ids, long[] TokenLabels)[] TokenLabels(BertWordRow row, int[] tags) =>
        row.Windows.Select(window =>
        {
            var labels = new long[window.Ids.Length];
            Array.Fill(labels, Ignored);
            for (int k = 0; k < window.WordStarts.Length; k++)
                labels[window.WordStarts[k]] = tags[window.FirstWord + k] < 0 ? Ignored : tags[window.FirstWord + k];
            return (window.Ids, labels);
        }).ToArray();

    public Tensor LossSum(int start, int count)
    {
        var windows = new ArraySegment<(int[] Ids, long[] TokenLabels)[]>(_rows, start, count).SelectMany(row => row).ToList();
        var batch = BertCollator.Collate(windows.Select(window => (window.Ids, new int[window.Ids.Length])).ToList(), 0, windows.Count, _paddingId);
        long tokens = batch.InputIds.shape[1];
        var labels = new long[windows.Count * tokens];
        Array.Fill(labels, Ignored);
        for (int window = 0; window < windows.Count; window++)
            windows[window].TokenLabels.CopyTo(labels, window * tokens);
        using var target = tensor(labels);
        var logits = _model.forward(batch);
        return _loss.Sum(logits.reshape(-1, _model.TagCount), target);
    }
}
