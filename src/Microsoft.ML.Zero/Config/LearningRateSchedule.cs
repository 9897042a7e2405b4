using Microsoft.ML.Zero.Config;
namespace Microsoft.ML.Zero;

/// <summary>How warm-up rises from the minimum to the maximum rate [<c>warmup_type</c>].</summary>
public enum WarmupType
{
    /// <summary>Rate rises with log(step + 1) / log(warmup steps) [<c>"log"</c>].</summary>
    Log,

    /// <summary>Rate rises with step / warmup steps [<c>"linear"</c>].</summary>
    Linear,
}

/// <summary>
/// A learning-rate schedule from DeepSpeed's <c>scheduler</c> block, with DeepSpeed's keys, defaults and formulas. As
/// in DeepSpeed, the schedule starts at iteration -1 (its minimum) and advances after every optimizer step that was
/// not skipped for an fp16 overflow, so optimizer step k (from 1) uses iteration k - 2.
/// </summary>
public abstract class LearningRateSchedule
{
    internal static readonly string[] DeepSpeedTypes = { nameof(WarmupLR), nameof(WarmupDecayLR), nameof(WarmupCosineLR), nameof(OneCycle) };

    private protected LearningRateSchedule()
    {
    }

    /// <summary>The rate at DeepSpeed's <c>last_batch_iteration</c> <paramref name="iteration"/> (-1 before the first step).</summary>
    internal abstract double LearningRate(long iteration, double optimizerLearningRate);

    /// <summary>Adam's beta1 at <paramref name="iteration"/> for schedules that cycle momentum, else null.</summary>
    internal virtual double? Momentum(long iteration) => null;

    /// <summary>A copy with values left to the trainer (total steps, an "auto" warm-up) filled in.</summary>
    internal virtual LearningRateSchedule Resolve(long totalSteps) => this;

    internal abstract void Validate(string prefix);

    /// <summary>The schedule in the training log's words.</summary>
    internal virtual string Describe() => GetType().Name;

    /// <summary>Whether the warm-up is left to the trainer (<c>warmup_num_steps: "auto"</c>), which then fills in <see cref="TrainerWarmupRatio"/>.</summary>
    internal virtual bool TakesTrainerWarmup => false;

    /// <summary>
    /// The trainer's warm-up share of the run's steps, for a warm-up left to it (Hugging Face fills DeepSpeed's "auto"
    /// <c>warmup_num_steps</c> from its <c>warmup_ratio</c> so); compared across ranks with the rest of the schedule.
    /// </summary>
    [System.Text.Json.Serialization.JsonInclude]
    internal double? TrainerWarmupRatio { get; private set; }

    /// <summary>A copy whose "auto" warm-up is <paramref name="warmupRatio"/> of the run's steps.</summary>
    internal LearningRateSchedule WithTrainerWarmup(double warmupRatio)
    {
        var copy = (LearningRateSchedule)MemberwiseClone();
        copy.TrainerWarmupRatio = warmupRatio;
        return copy;
    }

    // The "auto" warm-up's steps for a run of totalSteps: the trainer's ratio of them, rounded up (Hugging Face's get_warmup_steps).
    private protected int TrainerWarmupSteps(long totalSteps) =>
        (int)Math.Min(int.MaxValue, Math.Ceiling((TrainerWarmupRatio ?? throw new InvalidOperationException(
            $"{GetType().Name}.WarmupNumSteps (warmup_num_steps) is \"auto\", which only a trainer can fill in: set it.")) * totalSteps));

    /// <summary>Builds the schedule DeepSpeed names <paramref name="type"/> from its <c>params</c>; null for an unknown type.</summary>
    internal static LearningRateSchedule? Create(string type, IScheduleParameters p)
    {
        // "auto" leaves the warm-up to the trainer; an absent key takes DeepSpeed's 1000.
        int? WarmupSteps() => p.IsAuto("warmup_num_steps") ? null : p.Int("warmup_num_steps") ?? 1000;
        WarmupType Warmup() => p.String("warmup_type") switch
        {
            null or "log" => WarmupType.Log,
            "linear" => WarmupType.Linear,
            var other => throw p.Error("warmup_type", $"expected \"log\" or \"linear\", got \"{other}\""),
        };
        return type switch
        {
            nameof(WarmupLR) => new WarmupLR
            {
                WarmupMinLR = p.Number("warmup_min_lr") ?? 0, WarmupMaxLR = p.Number("warmup_max_lr"),
                WarmupNumSteps = WarmupSteps(), Type = Warmup(),
            },
            nameof(WarmupDecayLR) => new WarmupDecayLR
            {
                WarmupMinLR = p.Number("warmup_min_lr") ?? 0, WarmupMaxLR = p.Number("warmup_max_lr", whenAbsent: 0.001),
                WarmupNumSteps = WarmupSteps(), Type = Warmup(), TotalNumSteps = p.Int("total_num_steps"),
            },
            nameof(WarmupCosineLR) => new WarmupCosineLR
            {
                WarmupMinRatio = p.Number("warmup_min_ratio") ?? 0, WarmupNumSteps = WarmupSteps(),
                CosMinRatio = p.Number("cos_min_ratio") ?? 0.0001, Type = Warmup(), TotalNumSteps = p.Int("total_num_steps"),
            },
            nameof(OneCycle) => new OneCycle
            {
                CycleMinLR = p.Number("cycle_min_lr") ?? throw p.Error("cycle_min_lr", "required by OneCycle"),
                CycleMaxLR = p.Number("cycle_max_lr") ?? throw p.Error("cycle_max_lr", "required by OneCycle"),
                DecayLRRate = p.Number("decay_lr_rate") ?? 0, CycleFirstStepSize = p.Int("cycle_first_step_size") ?? 2000,
                CycleSecondStepSize = p.Int("cycle_second_step_size"), CycleFirstStairCount = p.Int("cycle_first_stair_count") ?? 0,
                CycleSecondStairCount = p.Int("cycle_second_stair_count"), DecayStepSize = p.Int("decay_step_size") ?? 0,
                CycleMomentum = p.Bool("cycle_momentum") ?? true, CycleMinMom = p.Number("cycle_min_mom") ?? 0.8,
                CycleMaxMom = p.Number("cycle_max_mom") ?? 0.9, DecayMomRate = p.Number("decay_mom_rate") ?? 0,
            },
            _ => null,
        };
    }

    // A warm-up's steps once resolved: an "auto" one is filled in by Resolve before the first step.
    private protected static int ResolvedWarmup(int? steps) => steps ?? throw new InvalidOperationException("The warm-up is \"auto\" and not resolved yet.");

    // DeepSpeed's warm-up fraction at iteration i of a warm-up of `steps` (at least 2) steps.
    private protected static double WarmupGamma(long iteration, int steps, WarmupType type)
    {
        int w = Math.Max(2, steps);
        if (iteration >= w)
            return 1;
        return type == WarmupType.Log ? Math.Log(iteration + 1) / Math.Log(w) : (double)iteration / w;
    }
}

/// <summary>Warm up from <see cref="WarmupMinLR"/> to <see cref="WarmupMaxLR"/>, then hold (DeepSpeed's <c>WarmupLR</c>).</summary>
public sealed class WarmupLR : LearningRateSchedule
{
    /// <summary>[<c>warmup_min_lr</c>]</summary>
    public double WarmupMinLR;

    /// <summary>The rate after warm-up; null takes the optimizer's learning rate [<c>warmup_max_lr</c>].</summary>
    public double? WarmupMaxLR;

    /// <summary>
    /// [<c>warmup_num_steps</c>]; fewer than 2 counts as 2, as in DeepSpeed. Null (<c>"auto"</c>) takes the trainer's
    /// warm-up: its WarmupRatio of the run's optimizer steps.
    /// </summary>
    public int? WarmupNumSteps = 1000;

    /// <summary>[<c>warmup_type</c>]</summary>
    public WarmupType Type = WarmupType.Log;

    internal override double LearningRate(long iteration, double optimizerLearningRate)
    {
        double max = WarmupMaxLR ?? optimizerLearningRate;
        return iteration < 0 ? WarmupMinLR : WarmupMinLR + (max - WarmupMinLR) * WarmupGamma(iteration, ResolvedWarmup(WarmupNumSteps), Type);
    }

    internal override LearningRateSchedule Resolve(long totalSteps)
    {
        var copy = (WarmupLR)MemberwiseClone();
        copy.WarmupNumSteps ??= TrainerWarmupSteps(totalSteps);
        return copy;
    }

    internal override bool TakesTrainerWarmup => WarmupNumSteps is null;

    internal override void Validate(string prefix)
    {
        OptionCheck.Require(WarmupMinLR is >= 0 and < double.PositiveInfinity, prefix + nameof(WarmupMinLR), WarmupMinLR, "a finite rate of 0 or more");
        OptionCheck.Require(WarmupMaxLR is null or (>= 0 and < double.PositiveInfinity), prefix + nameof(WarmupMaxLR), WarmupMaxLR, "a finite rate of 0 or more");
        OptionCheck.Require(WarmupNumSteps is null or >= 1, prefix + nameof(WarmupNumSteps), WarmupNumSteps, "a positive integer (or null for the trainer's warm-up)");
    }
}

/// <summary>Warm up as <see cref="WarmupLR"/>, then decay linearly to 0 at <see cref="TotalNumSteps"/> (DeepSpeed's <c>WarmupDecayLR</c>).</summary>
public sealed class WarmupDecayLR : LearningRateSchedule
{
    /// <summary>[<c>warmup_min_lr</c>]</summary>
    public double WarmupMinLR;

    /// <summary>The peak rate; null takes the optimizer's learning rate [<c>warmup_max_lr</c>, 0.001 when a ds_config leaves it out].</summary>
    public double? WarmupMaxLR;

    /// <summary>[<c>warmup_num_steps</c>]; fewer than 2 counts as 2. Null (<c>"auto"</c>) takes the trainer's warm-up: its WarmupRatio of the run's optimizer steps.</summary>
    public int? WarmupNumSteps = 1000;

    /// <summary>[<c>warmup_type</c>]</summary>
    public WarmupType Type = WarmupType.Log;

    /// <summary>The step at which the rate reaches 0; null ("auto") takes the training run's optimizer steps [<c>total_num_steps</c>].</summary>
    public int? TotalNumSteps;

    internal override double LearningRate(long iteration, double optimizerLearningRate)
    {
        double max = WarmupMaxLR ?? optimizerLearningRate;
        if (iteration < 0)
            return WarmupMinLR;
        int w = Math.Max(2, ResolvedWarmup(WarmupNumSteps));
        double gamma = iteration < w
            ? WarmupGamma(iteration, ResolvedWarmup(WarmupNumSteps), Type)
            : Math.Max(0, (double)(TotalNumSteps!.Value - iteration) / Math.Max(1.0, TotalNumSteps.Value - w));
        return WarmupMinLR + (max - WarmupMinLR) * gamma;
    }

    internal override LearningRateSchedule Resolve(long totalSteps)
    {
        var copy = (WarmupDecayLR)MemberwiseClone();
        copy.TotalNumSteps ??= (int)Math.Min(int.MaxValue, totalSteps);
        copy.WarmupNumSteps ??= TrainerWarmupSteps(totalSteps);
        return copy;
    }

    internal override bool TakesTrainerWarmup => WarmupNumSteps is null;

    internal override void Validate(string prefix)
    {
        OptionCheck.Require(WarmupMinLR is >= 0 and < double.PositiveInfinity, prefix + nameof(WarmupMinLR), WarmupMinLR, "a finite rate of 0 or more");
        OptionCheck.Require(WarmupMaxLR is null or (>= 0 and < double.PositiveInfinity), prefix + nameof(WarmupMaxLR), WarmupMaxLR, "a finite rate of 0 or more");
        OptionCheck.Require(WarmupNumSteps is null or >= 1, prefix + nameof(WarmupNumSteps), WarmupNumSteps, "a positive integer (or null for the trainer's warm-up)");
        OptionCheck.Require(TotalNumSteps is null or >= 1, prefix + nameof(TotalNumSteps), TotalNumSteps, "a positive integer (or null for the run's steps)");
    }
}

/// <summary>
/// Warm up from <see cref="WarmupMinRatio"/> of the optimizer's rate to all of it, then follow a cosine down to
/// <see cref="CosMinRatio"/> at <see cref="TotalNumSteps"/> (DeepSpeed's <c>WarmupCosineLR</c>; iteration -1 has rate 0).
/// </summary>
public sealed class WarmupCosineLR : LearningRateSchedule
{
    /// <summary>[<c>warmup_min_ratio</c>]</summary>
    public double WarmupMinRatio;

    /// <summary>[<c>warmup_num_steps</c>]; fewer than 2 counts as 2. Null (<c>"auto"</c>) takes the trainer's warm-up: its WarmupRatio of the run's optimizer steps.</summary>
    public int? WarmupNumSteps = 1000;

    /// <summary>[<c>cos_min_ratio</c>]</summary>
    public double CosMinRatio = 0.0001;

    /// <summary>[<c>warmup_type</c>]</summary>
    public WarmupType Type = WarmupType.Log;

    /// <summary>The end of the cosine; null ("auto") takes the training run's optimizer steps [<c>total_num_steps</c>].</summary>
    public int? TotalNumSteps;

    internal override double LearningRate(long iteration, double optimizerLearningRate)
    {
        if (iteration < 0)
            return 0;
        int w = Math.Max(2, ResolvedWarmup(WarmupNumSteps));
        double ratio;
        if (iteration < w)
        {
            ratio = WarmupMinRatio + WarmupGamma(iteration, ResolvedWarmup(WarmupNumSteps), Type) * (1 - WarmupMinRatio);
        }
        else
        {
            double progress = Math.Min(1.0, (iteration - w + 1) / (double)Math.Max(1, TotalNumSteps!.Value - w));
            ratio = Math.Max(0, CosMinRatio + (1 - CosMinRatio) * (1 + Math.Cos(Math.PI * progress)) / 2);
        }
        return optimizerLearningRate * ratio;
    }

    internal override LearningRateSchedule Resolve(long totalSteps)
    {
        var copy = (WarmupCosineLR)MemberwiseClone();
        copy.TotalNumSteps ??= (int)Math.Min(int.MaxValue, totalSteps);
        copy.WarmupNumSteps ??= TrainerWarmupSteps(totalSteps);
        return copy;
    }

    internal override bool TakesTrainerWarmup => WarmupNumSteps is null;

    internal override void Validate(string prefix)
    {
        OptionCheck.Require(WarmupMinRatio is >= 0 and <= 1, prefix + nameof(WarmupMinRatio), WarmupMinRatio, "in [0, 1]");
        OptionCheck.Require(CosMinRatio is >= 0 and <= 1, prefix + nameof(CosMinRatio), CosMinRatio, "in [0, 1]");
        OptionCheck.Require(WarmupNumSteps is null or >= 1, prefix + nameof(WarmupNumSteps), WarmupNumSteps, "a positive integer (or null for the trainer's warm-up)");
        OptionCheck.Require(TotalNumSteps is null or >= 1, prefix + nameof(TotalNumSteps), TotalNumSteps, "a positive integer (or null for the run's steps)");
    }
}

/// <summary>
/// The 1cycle policy (DeepSpeed's <c>OneCycle</c>): the rate rises from <see cref="CycleMinLR"/> to <see cref="CycleMaxLR"/>
/// over <see cref="CycleFirstStepSize"/> steps and falls back over <see cref="CycleSecondStepSize"/>, then decays. With
/// Adam-type optimizers beta1 cycles the other way between <see cref="CycleMaxMom"/> and <see cref="CycleMinMom"/> and,
/// as in DeepSpeed, beta2 is set to 0.99; SGD's momentum is not cycled.
/// </summary>
public sealed class OneCycle : LearningRateSchedule
{
    /// <summary>[<c>cycle_min_lr</c>], required.</summary>
    public double CycleMinLR = double.NaN;

    /// <summary>[<c>cycle_max_lr</c>], required.</summary>
    public double CycleMaxLR = double.NaN;

    /// <summary>[<c>decay_lr_rate</c>]</summary>
    public double DecayLRRate;

    /// <summary>[<c>cycle_first_step_size</c>]</summary>
    public int CycleFirstStepSize = 2000;

    /// <summary>[<c>cycle_second_step_size</c>]; null means the same as the first.</summary>
    public int? CycleSecondStepSize;

    /// <summary>[<c>cycle_first_stair_count</c>]; read and kept, and, as in DeepSpeed, not used.</summary>
    public int CycleFirstStairCount;

    /// <summary>[<c>cycle_second_stair_count</c>]; read and kept, and, as in DeepSpeed, not used.</summary>
    public int? CycleSecondStairCount;

    /// <summary>[<c>decay_step_size</c>]; 0 turns decay off.</summary>
    public int DecayStepSize;

    /// <summary>[<c>cycle_momentum</c>]</summary>
    public bool CycleMomentum = true;

    /// <summary>[<c>cycle_min_mom</c>]</summary>
    public double CycleMinMom = 0.8;

    /// <summary>[<c>cycle_max_mom</c>]</summary>
    public double CycleMaxMom = 0.9;

    /// <summary>[<c>decay_mom_rate</c>]</summary>
    public double DecayMomRate;

    private double FirstSteps => CycleFirstStepSize;

    private double TotalCycleSteps => FirstSteps + (CycleSecondStepSize ?? CycleFirstStepSize);

    internal override double LearningRate(long iteration, double optimizerLearningRate)
    {
        if (iteration < 0)
            return CycleMinLR;
        if (iteration < TotalCycleSteps)
            return CycleMinLR + (CycleMaxLR - CycleMinLR) * ScaleFactor(iteration);
        bool noDecay = DecayStepSize == 0 || DecayLRRate == 0;
        return noDecay ? CycleMinLR : CycleMinLR / (1 + DecayLRRate * (iteration - TotalCycleSteps + 1) / DecayStepSize);
    }

    internal override double? Momentum(long iteration)
    {
        if (!CycleMomentum)
            return null;
        if (iteration < 0)
            return CycleMinMom;
        if (iteration < TotalCycleSteps)
            return CycleMaxMom - (CycleMaxMom - CycleMinMom) * ScaleFactor(iteration);
        bool noDecay = DecayStepSize == 0 || DecayMomRate == 0;
        return noDecay ? CycleMaxMom : CycleMaxMom * (1 + DecayMomRate * (iteration - TotalCycleSteps + 1) / DecayStepSize);
    }

    // Where iteration falls in the cycle: 0 at the ends, 1 at the peak.
    private double ScaleFactor(long iteration)
    {
        double ratio = FirstSteps / TotalCycleSteps, position = (iteration + 1) / TotalCycleSteps;
        double x = 1 + position - Math.Floor(1 + position);
        return x <= ratio ? x / ratio : (x - 1) / (ratio - 1);
    }

    internal override void Validate(string prefix)
    {
        OptionCheck.Require(CycleMinLR >= 0, prefix + nameof(CycleMinLR), CycleMinLR, "a rate of 0 or more (cycle_min_lr is required)");
        OptionCheck.Require(CycleMaxLR >= CycleMinLR && double.IsFinite(CycleMaxLR), prefix + nameof(CycleMaxLR), CycleMaxLR, "a finite rate at least CycleMinLR (cycle_max_lr is required)");
        OptionCheck.Require(CycleFirstStepSize >= 1, prefix + nameof(CycleFirstStepSize), CycleFirstStepSize, "at least 1");
        OptionCheck.Require(CycleSecondStepSize is null or >= 1, prefix + nameof(CycleSecondStepSize), CycleSecondStepSize, "at least 1");
        OptionCheck.Require(DecayStepSize >= 0, prefix + nameof(DecayStepSize), DecayStepSize, "0 (no decay) or more");
        OptionCheck.Require(CycleMinMom is >= 0 and < 1 && CycleMaxMom is >= 0 and < 1, prefix + nameof(CycleMaxMom), CycleMaxMom, "momenta in [0, 1)");
    }
}
