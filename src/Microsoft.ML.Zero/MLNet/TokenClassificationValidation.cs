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
internal sealed class TokenClassificationValidation : ScoredValidation
{
    private readonly WordTagColumns _outputs;

    /// <param name="mlContext">Splits the set into the ranks' shares.</param>
    /// <param name="data">The validation set; its label a vector of keys keyed as the training data's.</param>
    /// <param name="label">The label option.</param>
    /// <param name="outputs">The column the model adds, with the training data's tag keys.</param>
    /// <param name="transformerOf">The scoring transformer of a replica.</param>
    public TokenClassificationValidation(MLContext mlContext, IDataView data, ColumnOption label, WordTagColumns outputs, Func<nn.Module, ITransformer> transformerOf)
        : base(mlContext, data, label, transformerOf)
    {
        _outputs = outputs;
        outputs.Tags.RequireSameKeys(Label, WordLabelColumns.CheckLabelType(LabelOption, Label.Type));
    }

    public override double[] ShareSums(nn.Module model, int rank, int worldSize)
    {
        var tally = new ClassificationTally(_outputs.Tags.Count);
        var (scored, _) = ScoredShare(model, rank, worldSize);
        if (scored is null)
            return tally.Sums;
        return Tally(scored, Label.Name, _outputs.PredictionColumnName, _outputs.Tags.Count).Sums;
    }

    /// <summary>
    /// The confusion counts over the words of <paramref name="scored"/>: a word without a label key is not counted, one
    /// without a prediction (key 0, past the maximum length) counts as a miss of its tag.
    /// </summary>
    public static ClassificationTally Tally(IDataView scored, string labelColumnName, string predictionColumnName, int tags)
    {
        var tally = new ClassificationTally(tags);
        var label = scored.Schema[labelColumnName];
        var predicted = scored.Schema[predictionColumnName];
        using var cursor = scored.GetRowCursor(new[] { label, predicted });
        var getLabel = cursor.GetGetter<VBuffer<uint>>(label);
        var getPredicted = cursor.GetGetter<VBuffer<uint>>(predicted);
        VBuffer<uint> truths = default, guesses = default;
        for (long row = 0; cursor.MoveNext(); row++)
        {
            getLabel(ref truths);
            getPredicted(ref guesses);
            if (truths.Length != guesses.Length)
                throw new InvalidOperationException($"Row {row}: label column '{labelColumnName}' holds {truths.Length} keys, but '{predictionColumnName}' {guesses.Length}; " +
                    "expected one key per word of the sentence (split on spaces) in both.");
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
        return tally;
    }

    public override ValidationMetrics Metrics(double[] sums)
    {
        var metrics = ClassificationTally.Metrics(sums, _outputs.Tags.Count);
        return new ValidationMetrics(metrics.Rows, metrics.Values.Where(v => v.Key != ZeroMetric.LogLoss).ToDictionary(v => v.Key, v => v.Value));
    }
}
