namespace Microsoft.ML.Zero;

/// <summary>
/// The learning-rate schedule a trainer applies when its DeepSpeed settings have no <c>scheduler</c> block (Hugging Face's
/// <c>lr_scheduler_type</c>, whose values these are).
/// </summary>
public enum ZeroSchedulerType
{
    /// <summary>The rate rises linearly from 0 over the warm-up, then falls linearly to 0 at the last optimizer step [<c>"linear"</c>].</summary>
    Linear,

    /// <summary>The rate stays at the optimizer's learning rate; there is no warm-up [<c>"constant"</c>].</summary>
    Constant,
}
