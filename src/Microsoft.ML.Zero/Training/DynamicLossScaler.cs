namespace Microsoft.ML.Zero.Training;

/// <summary>
/// The fp16 loss scale, with DeepSpeed's rules: a fixed scale when <see cref="Fp16Options.LossScale"/> is set, else a
/// scale that halves on overflow (after <see cref="Fp16Options.Hysteresis"/> overflows) and doubles after
/// <see cref="Fp16Options.LossScaleWindow"/> steps without one (DeepSpeed's <c>DynamicLossScaler.update_scale</c>). Every rank feeds it the same all-reduced overflow flag,
/// so every rank holds the same scale.
/// </summary>
internal sealed class DynamicLossScaler
{
    private const double ScaleFactor = 2;
    private readonly Fp16Options _options;
    private readonly bool _dynamic;
    private int _hysteresisLeft;
    private long _iteration;
    private long _lastOverflowIteration = -1;

    public DynamicLossScaler(Fp16Options options)
    {
        _options = options;
        _dynamic = options.LossScale == 0;
        Scale = _dynamic ? Math.Pow(2, options.InitialScalePower) : options.LossScale;
        _hysteresisLeft = options.Hysteresis;
    }

    public double Scale { get; private set; }

    /// <summary>The position a checkpoint records.</summary>
    public LossScalerState State => new(Scale, _hysteresisLeft, _iteration, _lastOverflowIteration);

    public void Restore(LossScalerState state)
    {
        Scale = state.Scale;
        _hysteresisLeft = state.HysteresisLeft;
        _iteration = state.Iteration;
        _lastOverflowIteration = state.LastOverflowIteration;
    }

    /// <summary>
    /// True when the all-reduced <paramref name="gradients"/> hold an inf or NaN; the step is then skipped and recorded as
    /// an overflow. The buffer is the same on every rank, so every rank reaches the same verdict: an overflow on any rank
    /// shows up in the sum. As DeepSpeed's _has_inf_or_nan, the check is the sum of the values (one scalar rather than a
    /// flag per value), taken in fp32.
    /// </summary>
    public bool SkipsOverflow(TorchSharp.torch.Tensor gradients, float meanLoss)
    {
        float sum = gradients.sum(TorchSharp.torch.ScalarType.Float32).item<float>();
        if (float.IsFinite(sum))
            return false;
        Update(overflow: true, float.IsFinite(meanLoss)
            ? $"the loss was finite ({meanLoss:G6}) but the summed gradients hold {(float.IsNaN(sum) ? "NaN" : "an infinity")}: a gradient outgrew fp16"
            : $"the loss itself is {meanLoss}: the forward pass overflowed fp16 or computed NaN");
        return true;
    }

    /// <summary>
    /// Records one step's outcome. Throws when an overflow happens at the minimum scale, saying what overflowed
    /// (<paramref name="what"/>): training cannot go on.
    /// </summary>
    public void Update(bool overflow, string? what = null)
    {
        if (!_dynamic)
            return;
        if (overflow)
        {
            if (_options.Hysteresis == 1 || _hysteresisLeft == 1)
            {
                if (Scale <= _options.MinLossScale)
                    throw new InvalidOperationException(
                        $"The fp16 loss scale is already at its minimum ({_options.MinLossScale}, fp16.min_loss_scale) and the step still overflows" +
                        (what is null ? "" : $" ({what})") +
                        ": the model's fp16 values are out of range. Lower the learning rate, enable gradient clipping, or train in bf16.");
                Scale = Math.Max(Scale / ScaleFactor, _options.MinLossScale);
            }
            else
            {
                _hysteresisLeft--;
            }
            _lastOverflowIteration = _iteration;
        }
        else
        {
            if (_options.ConsecutiveHysteresis)
                _hysteresisLeft = _options.Hysteresis;
            long stableSteps = _iteration - _lastOverflowIteration - 1;
            if (stableSteps > 0 && stableSteps % _options.LossScaleWindow == 0)
            {
                if (!_options.ConsecutiveHysteresis)
                    _hysteresisLeft = _options.Hysteresis;
                Scale *= ScaleFactor;
            }
        }
        _iteration++;
    }
}
