using static TorchSharp.torch;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Training;
using Microsoft.ML.Zero.Monitoring;

namespace Microsoft.ML.Zero.Loop;

/// <summary>
/// Scores the validation set on every rank at once, each its own share, adds the ranks' sums, and keeps the best
/// model and the early-stopping count by the chosen metric.
/// </summary>
internal sealed class Evaluator : IDisposable
{
    private readonly IValidation _validation;

    public Evaluator(IValidation validation, EvaluationSettings settings)
    {
        _validation = validation;
        Settings = settings;
        Best = new BestModel(settings);
    }

    public EvaluationSettings Settings { get; }

    public BestModel Best { get; }

    /// <summary>Scores the model after optimizer step <paramref name="step"/>; collective. Returns the metrics and whether they are the best so far.</summary>
    public (ValidationMetrics Metrics, bool IsBest) Evaluate(nn.Module model, ICommunicator communicator, DataParallelEngine engine, long step)
    {
        double[] sums;
        try
        {
            sums = _validation.ShareSums(model, communicator.Rank, communicator.WorldSize);
        }
        finally
        {
            model.train();
        }
        var metrics = _validation.Metrics(SumOverRanks(communicator, sums));
        if (metrics.Rows == 0)
            throw new InvalidOperationException("The validation set (ValidationSet) has no rows with a label to score: give it labelled rows, keyed as the training data's.");
        return (metrics, Best.Record(metrics, step, engine));
    }

    // Each value's bits gathered from every rank and added in rank order: every rank gets the same bits, and counts
    // stay exact (a float all-reduce would round counts above 2^24).
    private static double[] SumOverRanks(ICommunicator communicator, double[] values)
    {
        var lengths = communicator.AllGather(values.Length);
        if (lengths.Any(length => length != values.Length))
            throw new ZeroCommunicationException(communicator.Rank, $"The ranks' validation sums differ in length ({string.Join(", ", lengths)}): they score different models or label sets.");
        var total = new double[values.Length];
        for (int i = 0; i < values.Length; i++)
            foreach (long bits in communicator.AllGather(BitConverter.DoubleToInt64Bits(values[i])))
                total[i] += BitConverter.Int64BitsToDouble(bits);
        return total;
    }

    public void Dispose() => Best.Dispose();
}
