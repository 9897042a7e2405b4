using static TorchSharp.torch;
using Microsoft.ML.Zero.Monitoring;

namespace Microsoft.ML.Zero.Loop;

/// <summary>
/// Scores a validation set in shares: every rank scores its own rows with its replica and returns sums that, added over
/// the ranks, give the metrics of every row. No row is scored twice and no rank waits while another scores them all.
/// </summary>
internal interface IValidation
{
    /// <summary>The sums of rank <paramref name="rank"/>'s share (of <paramref name="worldSize"/>) scored with <paramref name="model"/>.</summary>
    double[] ShareSums(nn.Module model, int rank, int worldSize);

    /// <summary>Throws, naming the column, unless the validation set has the columns <paramref name="model"/> scores; called before training.</summary>
    void RequireScorable(nn.Module model);

    /// <summary>The metrics from <see cref="ShareSums"/> added up over every rank.</summary>
    ValidationMetrics Metrics(double[] sums);
}
