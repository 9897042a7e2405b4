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
internal sealed class RegressionValidation : IValidation
{
    private readonly ValidationShares _shares;
    private readonly string _labelColumnName;
    private readonly string _scoreColumnName;
    private readonly Func<nn.Module, ITransformer> _transformerOf;

    /// <param name="mlContext">Splits the set into the ranks' shares.</param>
    /// <param name="data">The validation set; its label a Single, as the training data's.</param>
    /// <param name="label">The label option.</param>
    /// <param name="scoreColumnName">The column the model writes its value into.</param>
    /// <param name="transformerOf">The scoring transformer of a replica.</param>
    public RegressionValidation(MLContext mlContext, IDataView data, ColumnOption label, string scoreColumnName, Func<nn.Module, ITransformer> transformerOf)
    {
        _shares = new ValidationShares(mlContext, data);
        _labelColumnName = label.ColumnName;
        _scoreColumnName = scoreColumnName;
        _transformerOf = transformerOf;
        var validationLabel = new ColumnOption(label.ColumnName, "ValidationSet's " + label.OptionName);
        var column = ColumnChecks.Find(data.Schema, validationLabel, "label");
        if (column.Type != NumberDataViewType.Single)
            throw ColumnChecks.RegressionLabelTypeError(validationLabel, column.Type.ToString()!);
    }

    public void RequireScorable(nn.Module model) => _transformerOf(model).GetOutputSchema(_shares.Data.Schema);

    public double[] ShareSums(nn.Module model, int rank, int worldSize)
    {
        var tally = new RegressionTally(_shares.RowCount);
        var (share, start) = _shares.Of(rank, worldSize);
        if (share is null)
            return tally.Sums;
        var scored = _transformerOf(model).Transform(share);
        var label = scored.Schema[_labelColumnName];
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

    public ValidationMetrics Metrics(double[] sums) => RegressionTally.Metrics(sums);
}
