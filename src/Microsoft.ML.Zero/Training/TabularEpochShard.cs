using Microsoft.ML.Zero.Models;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Training;

/// <summary>A rank's tabular rows for one epoch: flat features and zero-based labels, scored by an MLP.</summary>
internal sealed class TabularEpochShard : IEpochShard
{
    private readonly MlpClassifier _model;
    private readonly float[] _features;
    private readonly long[] _labels;
    private readonly int _featureCount;

    public TabularEpochShard(MlpClassifier model, float[] features, long[] labels)
    {
        _model = model;
        _features = features;
        _labels = labels;
        _featureCount = model.Shape.InputSize;
    }

    public int Count => _labels.Length;

    public Tensor LossSum(int start, int count)
    {
        var x = tensor(_features.AsSpan(start * _featureCount, count * _featureCount).ToArray(), new long[] { count, _featureCount });
        var y = tensor(_labels.AsSpan(start, count).ToArray(), new long[] { count });
        return nn.functional.cross_entropy(_model.forward(x).to(ScalarType.Float32), y, reduction: nn.Reduction.Sum);
    }
}
