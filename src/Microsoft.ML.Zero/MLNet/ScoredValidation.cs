using Microsoft.ML.Data;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.Monitoring;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// What the validations share: the set cut into contiguous shares, one per rank, each scored through the trained
/// model's own transformer (the same scoring as after Fit), and the set's label column found by name. Each task reads
/// its own sums from the scored share.
/// </summary>
internal abstract class ScoredValidation : IValidation
{
    private readonly ValidationShares _shares;
    private readonly Func<nn.Module, ITransformer> _transformerOf;

    /// <param name="mlContext">Splits the set into the ranks' shares.</param>
    /// <param name="data">The validation set.</param>
    /// <param name="label">The label option.</param>
    /// <param name="transformerOf">The scoring transformer of a replica.</param>
    private protected ScoredValidation(MLContext mlContext, IDataView data, ColumnOption label, Func<nn.Module, ITransformer> transformerOf)
    {
        _shares = new ValidationShares(mlContext, data);
        _transformerOf = transformerOf;
        LabelOption = new ColumnOption(label.ColumnName, "ValidationSet's " + label.OptionName);
        Label = ColumnChecks.Find(data.Schema, LabelOption, "label");
    }

    /// <summary>The label option as errors about the validation set name it.</summary>
    private protected ColumnOption LabelOption { get; }

    /// <summary>The validation set's label column.</summary>
    private protected DataViewSchema.Column Label { get; }

    /// <summary>The rows of the whole set.</summary>
    private protected long RowCount => _shares.RowCount;

    public void RequireScorable(nn.Module model) => _transformerOf(model).GetOutputSchema(_shares.Data.Schema);

    /// <summary>Rank <paramref name="rank"/>'s share scored by <paramref name="model"/>, and the position of its first row; null when the share is empty.</summary>
    private protected (IDataView? Scored, long Start) ScoredShare(nn.Module model, int rank, int worldSize)
    {
        var (share, start) = _shares.Of(rank, worldSize);
        return (share is null ? null : _transformerOf(model).Transform(share), start);
    }

    public abstract double[] ShareSums(nn.Module model, int rank, int worldSize);

    public abstract ValidationMetrics Metrics(double[] sums);
}
