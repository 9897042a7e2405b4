using Microsoft.ML.Data;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.Monitoring;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// A classifier's validation set, scored through the trained model's own transformer (the same scoring as after Fit)
/// in contiguous shares, one per rank: the confusion counts and the log-loss of the share.
/// </summary>
internal sealed class ClassificationValidation : ScoredValidation
{
    private readonly ScoreColumns _outputs;

    /// <param name="mlContext">Splits the set into the ranks' shares.</param>
    /// <param name="data">The validation set.</param>
    /// <param name="label">The label option; the validation set's label must be keyed as the training data's <paramref name="outputs"/>.</param>
    /// <param name="outputs">The columns the model adds, with the training data's label keys.</param>
    /// <param name="transformerOf">The scoring transformer of a replica.</param>
    public ClassificationValidation(MLContext mlContext, IDataView data, ColumnOption label, ScoreColumns outputs, Func<nn.Module, ZeroTransformer> transformerOf)
        : base(mlContext, data, label, transformerOf)
    {
        _outputs = outputs;
        outputs.Labels.RequireSameKeys(Label, ColumnChecks.CheckLabelType(LabelOption, Label.Type));
    }

    public override double[] ShareSums(nn.Module model, int rank, int worldSize)
    {
        var tally = new ClassificationTally(_outputs.Labels.Count);
        var (scored, _) = ScoredShare(model, rank, worldSize);
        if (scored is null)
            return tally.Sums;
        var label = scored.Schema[Label.Name];
        var score = scored.Schema[_outputs.ScoreColumnName];
        var predicted = scored.Schema[_outputs.PredictionColumnName];
        using var cursor = scored.GetRowCursor(new[] { label, score, predicted });
        var getLabel = cursor.GetGetter<uint>(label);
        var getScore = cursor.GetGetter<VBuffer<float>>(score);
        var getPredicted = cursor.GetGetter<uint>(predicted);
        uint truth = 0, guess = 0;
        var probabilities = default(VBuffer<float>);
        while (cursor.MoveNext())
        {
            getLabel(ref truth);
            // As ML.NET's evaluator, a row without a label (key 0) is not counted.
            if (truth == 0)
                continue;
            getPredicted(ref guess);
            getScore(ref probabilities);
            tally.Add((int)truth - 1, (int)guess - 1, probabilities.GetItemOrDefault((int)truth - 1));
        }
        return tally.Sums;
    }

    public override ValidationMetrics Metrics(double[] sums) => ClassificationTally.Metrics(sums, _outputs.Labels.Count);
}
