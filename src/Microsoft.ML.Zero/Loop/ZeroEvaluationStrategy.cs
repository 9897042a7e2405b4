namespace Microsoft.ML.Zero;

/// <summary>When a trainer scores its validation set [Hugging Face's <c>eval_strategy</c>].</summary>
public enum ZeroEvaluationStrategy
{
    /// <summary>After every epoch [<c>"epoch"</c>].</summary>
    Epoch,

    /// <summary>Every <see cref="ZeroTrainingOptions.EvaluationSteps"/> optimizer steps, and after the last step [<c>"steps"</c>].</summary>
    Steps,

    /// <summary>Never; a validation set is not scored [<c>"no"</c>].</summary>
    No,
}
