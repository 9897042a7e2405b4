using static TorchSharp.torch;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.Loop;

/// <summary>A rank's tabular rows for one epoch: flat features and zero-based labels, scored by the rank's module.</summary>
internal sealed class TabularEpochShard : IEpochShard
{
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly ZeroModelFactory _factory;
    private readonly float[] _features;
    private readonly long[] _labels;
    private readonly int _featureCount;
    private readonly ClassificationLoss? _loss;

    // loss replaces the factory's own LossSum; null keeps it.
    public TabularEpochShard(nn.Module<Tensor, Tensor> model, ZeroModelFactory factory, float[] features, long[] labels, int featureCount, ClassificationLoss? loss = null)
    {
        _model = model;
        _factory = factory;
        _features = features;
        _labels = labels;
        _featureCount = featureCount;
        _loss = loss;
    }

    public int Count => _labels.Length;

    public Tensor LossSum(int start, int count)
    {
        var x = tensor(_features.AsSpan(start * _featureCount, count * _featureCount).ToArray(), new long[] { count, _featureCount });
        var y = tensor(_labels.AsSpan(start, count).ToArray(), new long[] { count });
        var output = _model.call(InputPrecision.Match(_model, _factory.BuildInput(x)));
        return _loss is null ? _factory.LossSum(output, y) : _loss.Sum(output, y);
    }
}
