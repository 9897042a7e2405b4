using Microsoft.ML.Zero.Models;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero;

/// <summary>Turns rows of features into class probabilities with a trained MLP, without gradients.</summary>
internal sealed class MlpScorer
{
    private readonly MlpClassifier _model;

    public MlpScorer(MlpClassifier model)
    {
        _model = model;
        _model.eval();
    }

    public MlpClassifier Model => _model;

    public int FeatureCount => _model.Shape.InputSize;

    public int ClassCount => _model.Shape.ClassCount;

    /// <summary>Writes <paramref name="rows"/> rows of probabilities (row-major) into <paramref name="probabilities"/>.</summary>
    public void Score(float[] features, int rows, float[] probabilities)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        // The buffer may hold more rows than this (last) batch: score only the first rows.
        var input = tensor(features, new long[] { features.Length / FeatureCount, FeatureCount }).narrow(0, 0, rows);
        var output = nn.functional.softmax(_model.forward(input), dim: 1).contiguous();
        TensorMemory.AsSpan(output).CopyTo(probabilities);
    }
}
