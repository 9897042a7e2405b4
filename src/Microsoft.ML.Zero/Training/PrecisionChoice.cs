namespace Microsoft.ML.Zero.Training;

/// <summary>
/// The precision a run trains in, resolved from the one asked for on this machine, with what the log should say:
/// why <see cref="ZeroPrecision.Auto"/> chose as it did, or a warning that an explicit 16-bit format is emulated here.
/// </summary>
internal sealed record PrecisionChoice(ZeroPrecision Precision, string? Message, bool IsWarning)
{
    /// <summary>
    /// Auto: bf16 (fp32 master weights) where the CPU computes bf16 natively, else fp32. This build trains on the CPU,
    /// where fp16 is no faster than bf16, so Auto never picks fp16. Bf16 and Fp16 stay as asked, with a warning where
    /// the CPU emulates them (libtorch's 16-bit matmuls then run about 100x slower than fp32's).
    /// </summary>
    public static PrecisionChoice Resolve(ZeroPrecision requested)
    {
        if (requested == ZeroPrecision.Fp32)
            return new(requested, null, false);
        if (requested == ZeroPrecision.Auto)
        {
            var bf16 = SixteenBitSpeed.OfThisCpu(ZeroPrecision.Bf16);
            return new(bf16.Native ? ZeroPrecision.Bf16 : ZeroPrecision.Fp32, $"precision auto -> {(bf16.Native ? "bf16" : "fp32")}: {bf16.Reason}.", false);
        }
        var speed = SixteenBitSpeed.OfThisCpu(requested);
        if (speed.Native)
            return new(requested, null, false);
        string name = requested.ToString().ToLowerInvariant();
        string auto = Resolve(ZeroPrecision.Auto).Precision.ToString().ToLowerInvariant();
        return new(requested, $"{name} was asked for, but this CPU emulates it: {speed.Reason}. Training stays in {name} as asked and will be slow; " +
            $"\"enabled\": \"auto\" (ZeroPrecision.Auto) would train in {auto} here.", true);
    }
}
