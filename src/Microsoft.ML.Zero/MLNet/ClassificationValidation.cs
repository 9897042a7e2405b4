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
internal sealed class ClassificationValidation : IValidation
{
    private readonly ValidationShares _shares;
    private readonly ScoreColumns _outputs;
    private readonly string _labelColumnName;
    private readonly Func<nn.Module, ZeroTransformer> _transformerOf;

    /// <param name="mlContext">Splits the set into the ranks' shares.</param>
    /// <param name="data">The validation set.</param>
    /// <param name="label">The label option; the validation set's label must be keyed as the training data's <paramref name="outputs"/>.</param>
    /// <param name="outputs">The columns the model adds, with the training data's label keys.</param>
    /// <param name="transformerOf">The scoring transformer of a replica.</param>
    public ClassificationValidation(MLContext mlContext, IDataView data, ColumnOption label, ScoreColumns outputs, Func<nn.Module, ZeroTransformer> transformerOf)
    {
        _shares = new ValidationShares(mlContext, data);
        _outputs = outputs;
        _labelColumnName = label.ColumnName;
        _transformerOf = transformerOf;
        var validationLabel = new ColumnOption(label.ColumnName, "ValidationSet's " + label.OptionName);
        var column = ColumnChecks.Find(data.Schema, validationLabel, "label");
        int classes = ColumnChecks.CheckLabelType(validationLabel, column.Type);
        // A label keyed by another MapValueToKey would number the classes differently: the metrics would be silently wrong.
        var keys = LabelKeyValues.FromLabel(column, classes).Names.Select(name => name.ToString());
        var trainingKeys = outputs.Labels.Names.Select(name => name.ToString());
        if (classes != outputs.Labels.Count || !keys.SequenceEqual(trainingKeys))
            throw new ArgumentException($"The validation set's label column '{label.ColumnName}' has the keys [{string.Join(", ", keys)}]; the training data's has " +
                $"[{string.Join(", ", trainingKeys)}]. Key both with the same fitted MapValueToKey transformer.", "ValidationSet");
    }

    /// <summary>Throws, naming the column, unless the validation set has the columns the model scores.</summary>
    public void RequireScorable(nn.Module model) => _transformerOf(model).GetOutputSchema(_shares.Data.Schema);

    public double[] ShareSums(nn.Module model, int rank, int worldSize)
    {
        var tally = new ClassificationTally(_outputs.Labels.Count);
        var (share, _) = _shares.Of(rank, worldSize);
        if (share is null)
            return tally.Sums;
        var scored = _transformerOf(model).Transform(share);
        var label = scored.Schema[_labelColumnName];
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

    public ValidationMetrics Metrics(double[] sums) => ClassificationTally.Metrics(sums, _outputs.Labels.Count);
}
