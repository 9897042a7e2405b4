using Microsoft.ML.Zero.Config;
namespace Microsoft.ML.Zero;

/// <summary>Loss scaling for <see cref="ZeroPrecision.Fp16"/>: DeepSpeed's <c>fp16</c> block, with its defaults.</summary>
public sealed class Fp16Options
{
    /// <summary>A fixed loss scale, or 0 for dynamic scaling [<c>fp16.loss_scale</c>].</summary>
    public double LossScale;

    /// <summary>The dynamic scale starts at 2^this [<c>fp16.initial_scale_power</c>].</summary>
    public int InitialScalePower = 16;

    /// <summary>Steps without overflow before the scale doubles [<c>fp16.loss_scale_window</c>].</summary>
    public int LossScaleWindow = 1000;

    /// <summary>Overflows tolerated before the scale halves [<c>fp16.hysteresis</c>].</summary>
    public int Hysteresis = 2;

    /// <summary>Refill the hysteresis after every step without overflow, not only when the scale grows [<c>fp16.consecutive_hysteresis</c>].</summary>
    public bool ConsecutiveHysteresis;

    /// <summary>The smallest dynamic scale; an overflow at this scale stops training [<c>fp16.min_loss_scale</c>].</summary>
    public double MinLossScale = 1;

    internal void Validate(string prefix)
    {
        OptionCheck.Require(LossScale >= 0 && double.IsFinite(LossScale), prefix + nameof(LossScale), LossScale, "0 (dynamic) or a positive scale");
        OptionCheck.Require(InitialScalePower is >= 0 and <= 64, prefix + nameof(InitialScalePower), InitialScalePower, "in [0, 64]");
        OptionCheck.Require(LossScaleWindow >= 1, prefix + nameof(LossScaleWindow), LossScaleWindow, "at least 1");
        OptionCheck.Require(Hysteresis >= 1, prefix + nameof(Hysteresis), Hysteresis, "at least 1");
        OptionCheck.Require(MinLossScale > 0 && double.IsFinite(MinLossScale), prefix + nameof(MinLossScale), MinLossScale, "a positive number");
    }
}
