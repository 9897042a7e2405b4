using static TorchSharp.torch;
using Microsoft.ML.Zero.Models.Bert;

namespace Microsoft.ML.Zero.Loop;

/// <summary>The summed loss of a batch of model outputs [rows, outputs] against its labels as training reads them (zero-based classes or values).</summary>
internal delegate Tensor OutputLoss(Tensor outputs, float[] labels);

/// <summary>
/// A rank's encoded text rows for one epoch, each row as its windows, scored by a BERT with a classification or
/// regression head: the loss of a row is taken on its combined outputs (<see cref="BertRowLogits"/>), the outputs it is
/// scored on.
/// </summary>
internal sealed class TextEpochShard : IEpochShard
{
    private readonly BertClassifier _model;
    private readonly (int[] Ids, int[] TokenTypes)[][] _rows;
    private readonly float[] _labels;
    private readonly int _paddingId;
    private readonly OutputLoss _loss;

    public TextEpochShard(BertClassifier model, (int[] Ids, int[] TokenTypes)[][] rows, float[] labels, int paddingId, OutputLoss loss)
    {
        _model = model;
        _rows = rows;
        _labels = labels;
        _paddingId = paddingId;
        _loss = loss;
    }

    public int Count => _labels.Length;

    public Tensor LossSum(int start, int count) =>
        _loss(BertRowLogits.Compute(_model, _rows, start, count, _paddingId), _labels.AsSpan(start, count).ToArray());
}
