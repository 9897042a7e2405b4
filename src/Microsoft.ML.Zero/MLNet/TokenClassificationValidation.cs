using Microsoft.ML.Data;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.Monitoring;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// A token classifier's validation set, scored through the trained model's own transformer in contiguous shares, one
/// per rank: the confusion counts over words (<see cref="ClassificationTally"/>), so accuracy and macro F1 are
/// token-level. Words without a label key are not counted; words past the maximum length (no prediction) count as wrong.
/// There are no probabilities, hence no log-loss.
/// </summary>
internal sealed class TokenClassificationValidation : IValidation
{
    private readonly ValidationShares _shares;
    private readonly WordTagColumns _outputs;
    private readonly string _labelColumnName;
    private readonly Func<nn.Module, ITransformer> _transformerOf;

    /// <param name="mlContext">Splits the set into the ranks' shares.</param>
    /// <param name="data">The validation set; its label a vector of keys keyed as the training data's.</param>
    /// <param name="label">The label option.</param>
    /// <param name="outputs">The column the model adds, with the training data's tag keys.</param>
    /// <param name="transformerOf">The scoring transformer of a replica.</param>
    public TokenClassificationValidation(MLContext mlContext, IDataView data, ColumnOption label, WordTagColumns outputs, Func<nn.Module, ITransformer> transformerOf)
    {
        _shares = new ValidationShares(mlContext, data);
        _outputs = outputs;
        _labelColumnName = label.ColumnName;
        _transformerOf = transformerOf;
        var validationLabel = new ColumnOption(label.ColumnName, "ValidationSet's " + label.OptionName);
        var column = ColumnChecks.Find(data.Schema, validationLabel, "label");
        int tags = WordLabelColumns.CheckLabelType(validationLabel, column.Type);
        var keys = LabelKeyValues.FromLabel(column, tags).Names.Select(name => name.ToString());
        var trainingKeys = outputs.Tags.Names.Select(name => name.ToString());
        if (tags != outputs.Tags.Count || !keys.SequenceEqual(trainingKeys))
            throw new ArgumentException($"The validation set's label column '{label.ColumnName}' has the keys [{string.Join(", ", keys)}]; the training data's has " +
                $"[{string.Join(", ", trainingKeys)}]. Key both with the same fitted MapValueToKey transformer.", "ValidationSet");
    }

    public void RequireScorable(nn.Module model) => _transformerOf(model).GetOutputSchema(_shares.Data.Schema);

    public double[] ShareSums(nn.Module model, int rank, int worldSize)
    {
        var tally = new ClassificationTally(_outputs.Tags.Count);
        var (share, _) = _shares.Of(rank, worldSize);
        if (share is null)
            return tally.Sums;
        var scored = _transformerOf(model).Transform(share);
        var label = scored.Schema[_labelColumnName];
        var predicted = scored.Schema[_outputs.PredictionColumnName];
        using var cursor = scored.GetRowCursor(new[] { label, predicted });
        var getLabel = cursor.GetGetter<VBuffer<uint>>(label);
        var getPredicted = cursor.GetGetter<VBuffer<uint>>(predicted);
        VBuffer<uint> truths = default, guesses = default;
        while (cursor.MoveNext())
        {
            getLabel(ref truths);
            getPredicted(ref guesses);
            if (truths.Length != guesses.Length)
                throw new InvalidOperationException($"A validation row's label column '{_labelColumnName}' holds {truths.Length} keys for {guesses.Length} words; " +
                    "expected one key per word of the sentence (split on spaces).");
            var guess = guesses.DenseValues().ToArray();
            int word = 0;
            foreach (uint truth in truths.DenseValues())
            {
                if (truth != 0)
                {
                    if (guess[word] == 0)
                        tally.AddUnpredicted((int)truth - 1);
                    else
                        tally.Add((int)truth - 1, (int)guess[word] - 1, 1);
                }
                word++;
            }
        }
        return tally.Sums;
    }

    public ValidationMetrics Metrics(double[] sums)
    {
        var metrics = ClassificationTally.Metrics(sums, _outputs.Tags.Count);
        return new ValidationMetrics(metrics.Rows, metrics.Values.Where(v => v.Key != ZeroMetric.LogLoss).ToDictionary(v => v.Key, v => v.Value));
    }
}
