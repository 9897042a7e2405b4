using Microsoft.ML.Data;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.Monitoring;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// A regression's validation set, scored through the trained model's own transformer in contiguous shares, one per
/// rank: each row's label and score at its place in the set (<see cref="RegressionTally"/>).
/// </summary>
internal sealed class RegressionValidation : ScoredValidation
{
    private readonly string _scoreColumnName;

    /// <param name="mlContext">Splits the set into the ranks' shares.</param>
    /// <param name="data">The validation set; its label a Single, as the training data's.</param>
    /// <param name="label">The label option.</param>
    /// <param name="scoreColumnName">The column the model writes its value into.</param>
    /// <param name="transformerOf">The scoring transformer of a replica.</param>
    public RegressionValidation(MLContext mlContext, IDataView data, ColumnOption label, string scoreColumnName, Func<nn.Module, ITransformer> transformerOf)
        : base(mlContext, data, label, transformerOf)
    {
        _scoreColumnName = scoreColumnName;
        if (Label.Type != NumberDataViewType.Single)
            throw ColumnChecks.RegressionLabelTypeError(LabelOption, Label.Type.ToString()!);
    }

    public override double[] ShareSums(nn.Module model, int rank, int worldSize)
    {
        var tally = new RegressionTally(RowCount);
        var (scored, start) = ScoredShare(model, rank, worldSize);
        if (scored is null)
            return tally.Sums;
        var label = scored.Schema[Label.Name];
        var score = scored.Schema[_scoreColumnName];
        using var cursor = scored.GetRowCursor(new[] { label, score });
        var getLabel = cursor.GetGetter<float>(label);
        var getScore = cursor.GetGetter<float>(score);
        float truth = 0, value = 0;
        for (long row = start; cursor.MoveNext(); row++)
        {
            getLabel(ref truth);
            // As ML.NET's regression evaluator, a row without a label (NaN) is not counted.
            if (float.IsNaN(truth))
                continue;
            getScore(ref value);
            tally.Add(row, truth, value);
        }
        return tally.Sums;
    }

    public override ValidationMetrics Metrics(double[] sums) => RegressionTally.Metrics(sums);
}
