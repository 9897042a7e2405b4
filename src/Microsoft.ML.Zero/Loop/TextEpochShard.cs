using static TorchSharp.torch;
using Microsoft.ML.Zero.Models.Bert;

namespace Microsoft.ML.Zero.Loop;

/// <summary>
/// A rank's encoded text rows for one epoch, each row as its windows, scored by a BERT classifier: the loss of a row
/// is taken on its combined logits (<see cref="BertRowLogits"/>), the logits it is scored on.
/// </summary>
internal sealed class TextEpochShard : IEpochShard
{
    private readonly BertClassifier _model;
    private readonly (int[] Ids, int[] TokenTypes)[][] _rows;
    private readonly long[] _labels;
    private readonly int _paddingId;
    private readonly ClassificationLoss _loss;

    public TextEpochShard(BertClassifier model, (int[] Ids, int[] TokenTypes)[][] rows, long[] labels, int paddingId, ClassificationLoss? loss = null)
    {
        _model = model;
        _rows = rows;
        _labels = labels;
        _paddingId = paddingId;
        _loss = loss ?? ClassificationLoss.CrossEntropy;
    }

    public int Count => _labels.Length;

    public Tensor LossSum(int start, int count)
    {
        var logits = BertRowLogits.Compute(_model, _rows, start, count, _paddingId);
        var y = tensor(_labels.AsSpan(start, count).ToArray(), new long[] { count });
        return _loss.Sum(logits, y);
    }
}
