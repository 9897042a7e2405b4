using Microsoft.ML.Zero.Monitoring;

namespace Microsoft.ML.Zero.Loop;

/// <summary>When to score the validation set, which metric names the best model, and when to stop early.</summary>
internal sealed record EvaluationSettings(ZeroEvaluationStrategy Strategy, int EverySteps, ZeroMetric MetricForBestModel, bool LoadBestModelAtEnd,
    int EarlyStoppingPatience, double EarlyStoppingThreshold)
{
    public static readonly EvaluationSettings EveryEpoch = new(ZeroEvaluationStrategy.Epoch, 0, ZeroMetric.Accuracy, false, 0, 0);

    /// <summary>Whether to evaluate after optimizer step <paramref name="stepsTaken"/> (counted from 1).</summary>
    public bool IsDue(long stepsTaken, bool epochDone, bool lastStep) => Strategy switch
    {
        ZeroEvaluationStrategy.Epoch => epochDone,
        // The last step is evaluated too, so that the final model has metrics and can be the best.
        ZeroEvaluationStrategy.Steps => stepsTaken % EverySteps == 0 || lastStep,
        _ => false,
    };

    /// <summary>A line for the log, e.g. "every epoch, best model by accuracy, early stopping after 2 evaluations without improvement".</summary>
    public string Describe()
    {
        string when = Strategy == ZeroEvaluationStrategy.Steps ? $"every {EverySteps} optimizer steps" : "after every epoch";
        string best = LoadBestModelAtEnd ? $", keeping the best model by {ValidationMetrics.LogName(MetricForBestModel)}" : "";
        string stop = EarlyStoppingPatience > 0
            ? $", stopping early after {EarlyStoppingPatience} evaluation(s) without a {ValidationMetrics.LogName(MetricForBestModel)} improvement above {EarlyStoppingThreshold:G4}"
            : "";
        return $"The validation set is scored {when}{best}{stop}.";
    }
}
