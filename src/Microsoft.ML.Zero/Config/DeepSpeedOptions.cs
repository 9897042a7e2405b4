using Microsoft.ML.Zero.Config;
namespace Microsoft.ML.Zero;

/// <summary>
/// How the data-parallel engine trains: batch sizes and gradient accumulation, precision and loss scaling, clipping,
/// the optimizer and learning-rate schedule. Field names are C# forms of DeepSpeed's config keys (in brackets);
/// <see cref="FromDeepSpeedConfig"/> reads a <c>ds_config.json</c>. Values left null (or <c>"auto"</c> in a ds_config)
/// come from the trainer's own options, as the Hugging Face Trainer fills DeepSpeed's "auto" values.
/// </summary>
public class DeepSpeedOptions
{
    /// <summary>Rows per optimizer step over all ranks [<c>train_batch_size</c>].</summary>
    public int? TrainBatchSize;

    /// <summary>Rows per rank per forward/backward pass [<c>train_micro_batch_size_per_gpu</c>].</summary>
    public int? TrainMicroBatchSizePerGpu;

    /// <summary>Micro-batches whose gradients add up before each optimizer step [<c>gradient_accumulation_steps</c>].</summary>
    public int? GradientAccumulationSteps;

    /// <summary>
    /// The number format of forward and backward [<c>fp16.enabled</c>, <c>bf16.enabled</c>]; <see cref="ZeroPrecision.Auto"/>
    /// (<c>"enabled": "auto"</c>) picks bf16 where the CPU computes it natively, else fp32.
    /// </summary>
    public ZeroPrecision Precision = ZeroPrecision.Fp32;

    /// <summary>Loss scaling when <see cref="Precision"/> is Fp16 [<c>fp16</c>].</summary>
    public Fp16Options Fp16 = new();

    /// <summary>Clip gradients to this global L2 norm after averaging; 0 turns clipping off [<c>gradient_clipping</c>].</summary>
    public double GradientClipping;

    /// <summary>Divide gradients by the world size before the all-reduce rather than after [<c>prescale_gradients</c>].</summary>
    public bool PrescaleGradients;

    /// <summary>
    /// Without <see cref="PrescaleGradients"/>, gradients are divided by this before the all-reduce and multiplied by
    /// factor / world size after, keeping fp16 sums in range [<c>gradient_predivide_factor</c>].
    /// </summary>
    public double GradientPredivideFactor = 1;

    /// <summary>
    /// In fp32 and bf16, skip an optimizer step whose loss or gradient norm is NaN or infinite (counted as a skipped
    /// step, as fp16 overflows are) instead of stopping training with an error. Not a DeepSpeed key: DeepSpeed has no
    /// such switch, and fp16 always skips such steps through its loss scaler.
    /// </summary>
    public bool SkipNonFiniteSteps;

    /// <summary>
    /// The type gradients are all-reduced in [<c>communication_data_type</c>]. Null or Fp32 sums them in fp32; Bf16 or
    /// Fp16 halves the traffic between processes at the cost of rounding each sum to 16 bits (fp16 sums of large
    /// gradients may overflow, which the fp16 loss scaler treats as an overflowed step).
    /// </summary>
    public ZeroPrecision? CommunicationDataType;

    /// <summary>
    /// The type gradients add up in over a step's micro-batches, then are unscaled, clipped and read by the optimizer
    /// [<c>data_types.grad_accum_dtype</c>]: Fp32, or the model's <see cref="Precision"/>. Null takes DeepSpeed's default
    /// for stage 0: Fp32 under bf16, the model's type otherwise. In the model's 16-bit type mixed precision keeps
    /// 16 bytes per parameter (with AdamW) instead of 20, at the cost of rounding each accumulated sum to 16 bits.
    /// </summary>
    public ZeroPrecision? GradientAccumulationDataType;

    /// <summary>The optimizer [<c>optimizer</c>].</summary>
    public ZeroOptimizerOptions Optimizer = new();

    /// <summary>The learning-rate schedule, or null for a constant rate [<c>scheduler</c>].</summary>
    public LearningRateSchedule? Scheduler;

    /// <summary>ZeRO settings; the stage must be 0 [<c>zero_optimization</c>].</summary>
    public ZeroOptimizationOptions ZeroOptimization = new();

    /// <summary>Log progress every this many optimizer steps [<c>steps_per_print</c>].</summary>
    public int StepsPerPrint = 10;

    /// <summary>Log the time spent in forward, backward, all-reduce and optimizer step [<c>wall_clock_breakdown</c>].</summary>
    public bool WallClockBreakdown;

    /// <summary>TensorBoard event files of loss, learning rate and loss scale per step [<c>tensorboard</c>].</summary>
    public MonitorOptions TensorBoard = new();

    /// <summary>The same metrics as CSV files, one per metric [<c>csv_monitor</c>].</summary>
    public MonitorOptions CsvMonitor = new();

    /// <summary>What reading a ds_config found but did not use (unknown keys), for the trainer to log.</summary>
    public IReadOnlyList<string> ConfigWarnings { get; internal set; } = Array.Empty<string>();

    /// <summary>
    /// Reads a DeepSpeed config: a path to a <c>ds_config.json</c>, or the JSON text itself. Wrong types or values throw
    /// with the key's JSON path; keys this trainer does not know are listed in <see cref="ConfigWarnings"/>.
    /// </summary>
    public static DeepSpeedOptions FromDeepSpeedConfig(string pathOrJson) => Read<DeepSpeedOptions>(pathOrJson);

    private protected static T Read<T>(string pathOrJson) where T : DeepSpeedOptions, new()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(pathOrJson);
        bool isJson = pathOrJson.TrimStart().StartsWith('{');
        string source = isJson ? "DeepSpeed config" : pathOrJson;
        if (!isJson && !File.Exists(pathOrJson))
            throw new FileNotFoundException($"DeepSpeed config '{pathOrJson}' does not exist.", pathOrJson);
        return DeepSpeedConfigReader.Read<T>(isJson ? pathOrJson : File.ReadAllText(pathOrJson), source);
    }

    internal void Validate()
    {
        const string Prefix = "DeepSpeedOptions.";
        OptionCheck.Require(TrainBatchSize is null or >= 1, Prefix + nameof(TrainBatchSize), TrainBatchSize, "at least 1");
        OptionCheck.Require(TrainMicroBatchSizePerGpu is null or >= 1, Prefix + nameof(TrainMicroBatchSizePerGpu), TrainMicroBatchSizePerGpu, "at least 1");
        OptionCheck.Require(GradientAccumulationSteps is null or >= 1, Prefix + nameof(GradientAccumulationSteps), GradientAccumulationSteps, "at least 1");
        OptionCheck.Require(Enum.IsDefined(Precision), Prefix + nameof(Precision), Precision, string.Join(" or ", Enum.GetNames<ZeroPrecision>()));
        OptionCheck.Require(CommunicationDataType is null or ZeroPrecision.Fp32 or ZeroPrecision.Bf16 or ZeroPrecision.Fp16, Prefix + nameof(CommunicationDataType), CommunicationDataType,
            "null, Fp32, Bf16 or Fp16");
        // Under Auto a 16-bit accumulation type can only mean bf16, and applies only when Auto picks bf16.
        var modelType = Precision == ZeroPrecision.Auto ? ZeroPrecision.Bf16 : Precision;
        OptionCheck.Require(GradientAccumulationDataType is null || GradientAccumulationDataType == ZeroPrecision.Fp32 || GradientAccumulationDataType == modelType,
            Prefix + nameof(GradientAccumulationDataType) + " (data_types.grad_accum_dtype)", GradientAccumulationDataType,
            $"null, Fp32 or the model's precision ({modelType})");
        OptionCheck.Require(GradientClipping >= 0 && double.IsFinite(GradientClipping), Prefix + nameof(GradientClipping), GradientClipping, "0 (off) or a positive norm");
        OptionCheck.Require(GradientPredivideFactor > 0 && double.IsFinite(GradientPredivideFactor), Prefix + nameof(GradientPredivideFactor), GradientPredivideFactor, "a positive number");
        OptionCheck.Require(StepsPerPrint >= 1, Prefix + nameof(StepsPerPrint), StepsPerPrint, "at least 1");
        Fp16.Validate(Prefix + "Fp16.");
        Optimizer.Validate(Prefix + "Optimizer.");
        Scheduler?.Validate(Prefix + "Scheduler.");
        ZeroOptimization.Validate(Prefix + "ZeroOptimization.");
        TensorBoard.Validate(Prefix + "TensorBoard.");
        CsvMonitor.Validate(Prefix + "CsvMonitor.");
    }
}
