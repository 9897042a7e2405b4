using System.Text.Json;

namespace Microsoft.ML.Zero.Config;

/// <summary>
/// Reads a DeepSpeed <c>ds_config.json</c> into <see cref="DeepSpeedOptions"/>. Each value is checked against the type its
/// key needs; errors name the key by its JSON path (e.g. <c>fp16.loss_scale_window</c>). Unknown keys are collected as
/// warnings rather than failing, since configs are often shared with other DeepSpeed features.
/// </summary>
internal sealed class DeepSpeedConfigReader
{
    private readonly string _source;
    private readonly List<string> _unknownKeys = new();

    private DeepSpeedConfigReader(string source) => _source = source;

    public static T Read<T>(string json, string source) where T : DeepSpeedOptions, new()
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source} is not valid JSON: {e.Message}", e);
        }
        using (document)
        {
            var reader = new DeepSpeedConfigReader(source);
            reader.RequireReadableText(document.RootElement, "");
            var options = reader.ReadRoot(document.RootElement, new T());
            var warnings = new List<string>();
            if (reader._unknownKeys.Count > 0)
                warnings.Add($"{source}: keys this trainer does not use were ignored: {string.Join(", ", reader._unknownKeys)}.");
            options.ConfigWarnings = warnings;
            options.Validate();
            return options;
        }
    }

    private T ReadRoot<T>(JsonElement root, T options) where T : DeepSpeedOptions
    {
        Switch fp16 = Switch.Unset, bf16 = Switch.Unset;
        foreach (var (key, value, path) in Properties(root, ""))
        {
            switch (key)
            {
                case "train_batch_size": options.TrainBatchSize = AutoOr(value, path, Int); break;
                case "train_micro_batch_size_per_gpu": options.TrainMicroBatchSizePerGpu = AutoOr(value, path, Int); break;
                case "gradient_accumulation_steps": options.GradientAccumulationSteps = AutoOr(value, path, Int); break;
                case "gradient_clipping": options.GradientClipping = AutoOr(value, path, Number) ?? 0; break;
                case "prescale_gradients": options.PrescaleGradients = Bool(value, path); break;
                case "gradient_predivide_factor": options.GradientPredivideFactor = Number(value, path); break;
                case "steps_per_print": options.StepsPerPrint = Int(value, path); break;
                case "wall_clock_breakdown": options.WallClockBreakdown = Bool(value, path); break;
                case "fp16": fp16 = ReadFp16(value, path, options.Fp16); break;
                case "bf16": bf16 = ReadEnabledOnly(value, path); break;
                case "bfloat16": bf16 = ReadEnabledOnly(value, path); break;
                case "optimizer": ReadOptimizer(value, path, options.Optimizer); break;
                case "scheduler": options.Scheduler = ReadScheduler(value, path); break;
                case "zero_optimization": ReadZeroOptimization(value, path, options.ZeroOptimization); break;
                case "tensorboard": ReadMonitor(value, path, options.TensorBoard); break;
                case "csv_monitor": ReadMonitor(value, path, options.CsvMonitor); break;
                case "communication_data_type": options.CommunicationDataType = ReadDataType(value, path); break;
                case "data_types": ReadDataTypes(value, path, options); break;
                default: _unknownKeys.Add(path); break;
            }
        }
        options.Precision = Precision(fp16, bf16);
        return options;
    }

    // A block's "enabled": absent, false, true or "auto".
    private enum Switch { Unset, Off, On, Auto }

    private Switch Enabled(JsonElement value, string path) =>
        value.ValueKind == JsonValueKind.String && value.GetString() == "auto" ? Switch.Auto : Bool(value, path) ? Switch.On : Switch.Off;

    // "auto" yields to a format that is switched on. fp16's "auto" means fp16 where the device has fast fp16 (a GPU), else
    // ZeroPrecision.Auto: on the CPU this build trains on, that is Auto, or fp32 when bf16 is switched off.
    private ZeroPrecision Precision(Switch fp16, Switch bf16) => (fp16, bf16) switch
    {
        (Switch.On, Switch.On) => throw Error("fp16.enabled, bf16.enabled", "only one of fp16 and bf16 can be enabled"),
        (Switch.On, _) => ZeroPrecision.Fp16,
        (_, Switch.On) => ZeroPrecision.Bf16,
        (Switch.Auto, Switch.Off) => ZeroPrecision.Fp32,
        (Switch.Auto, _) or (_, Switch.Auto) => ZeroPrecision.Auto,
        _ => ZeroPrecision.Fp32,
    };

    private Switch ReadFp16(JsonElement block, string path, Fp16Options fp16)
    {
        var enabled = Switch.Unset;
        foreach (var (key, value, keyPath) in Properties(block, path))
        {
            switch (key)
            {
                case "enabled": enabled = Enabled(value, keyPath); break;
                case "loss_scale": fp16.LossScale = Number(value, keyPath); break;
                case "initial_scale_power": fp16.InitialScalePower = Int(value, keyPath); break;
                case "loss_scale_window": fp16.LossScaleWindow = Int(value, keyPath); break;
                case "hysteresis": fp16.Hysteresis = Int(value, keyPath); break;
                case "consecutive_hysteresis": fp16.ConsecutiveHysteresis = Bool(value, keyPath); break;
                case "min_loss_scale": fp16.MinLossScale = Number(value, keyPath); break;
                default: _unknownKeys.Add(keyPath); break;
            }
        }
        return enabled;
    }

    private Switch ReadEnabledOnly(JsonElement block, string path)
    {
        var enabled = Switch.Unset;
        foreach (var (key, value, keyPath) in Properties(block, path))
        {
            if (key == "enabled")
                enabled = Enabled(value, keyPath);
            else
                _unknownKeys.Add(keyPath);
        }
        return enabled;
    }

    private void ReadMonitor(JsonElement block, string path, MonitorOptions monitor)
    {
        foreach (var (key, value, keyPath) in Properties(block, path))
        {
            switch (key)
            {
                case "enabled": monitor.Enabled = Bool(value, keyPath); break;
                case "output_path": monitor.OutputPath = String(value, keyPath); break;
                case "job_name": monitor.JobName = String(value, keyPath); break;
                default: _unknownKeys.Add(keyPath); break;
            }
        }
    }

    private void ReadOptimizer(JsonElement block, string path, ZeroOptimizerOptions optimizer)
    {
        string? type = null;
        bool adamWMode = true;
        foreach (var (key, value, keyPath) in Properties(block, path))
        {
            if (key == "type")
            {
                type = String(value, keyPath);
                continue;
            }
            if (key != "params")
            {
                _unknownKeys.Add(keyPath);
                continue;
            }
            foreach (var (name, parameter, parameterPath) in Properties(value, keyPath))
            {
                switch (name)
                {
                    case "lr": optimizer.LearningRate = AutoOr(parameter, parameterPath, Number); break;
                    case "betas":
                        if (AutoOr(parameter, parameterPath, NumberPair) is { } betas)
                            (optimizer.Beta1, optimizer.Beta2) = betas;
                        break;
                    case "eps": optimizer.Epsilon = AutoOr(parameter, parameterPath, Number); break;
                    case "weight_decay": optimizer.WeightDecay = AutoOr(parameter, parameterPath, Number); break;
                    case "momentum": optimizer.Momentum = Number(parameter, parameterPath); break;
                    case "dampening": optimizer.Dampening = Number(parameter, parameterPath); break;
                    case "nesterov": optimizer.Nesterov = Bool(parameter, parameterPath); break;
                    case "adam_w_mode": adamWMode = Bool(parameter, parameterPath); break;
                    case "torch_adam": Bool(parameter, parameterPath); break; // every Adam here is TorchSharp's own
                    default: _unknownKeys.Add(parameterPath); break;
                }
            }
        }
        optimizer.Type = type?.ToLowerInvariant() switch
        {
            null => null,
            "adam" => adamWMode ? ZeroOptimizer.AdamW : ZeroOptimizer.Adam,
            "adamw" => ZeroOptimizer.AdamW,
            "sgd" => ZeroOptimizer.Sgd,
            _ => throw Error(Join(path, "type"), $"expected \"Adam\", \"AdamW\" or \"SGD\", got \"{type}\""),
        };
    }

    private LearningRateSchedule ReadScheduler(JsonElement block, string path)
    {
        string? type = null;
        var parameters = new ScheduleParameters(this, Join(path, "params"));
        foreach (var (key, value, keyPath) in Properties(block, path))
        {
            if (key == "type")
                type = String(value, keyPath);
            else if (key == "params")
                foreach (var (name, parameter, _) in Properties(value, keyPath))
                    parameters.Values[name] = parameter;
            else
                _unknownKeys.Add(keyPath);
        }
        string expected = "expected one of " + string.Join(", ", LearningRateSchedule.DeepSpeedTypes.Select(t => $"\"{t}\""));
        if (type is null)
            throw Error(Join(path, "type"), expected);
        var schedule = LearningRateSchedule.Create(type, parameters) ?? throw Error(Join(path, "type"), $"{expected}, got \"{type}\"");
        // Keys the schedule did not read are not DeepSpeed's keys for that type.
        _unknownKeys.AddRange(parameters.Values.Keys.Where(k => !parameters.Read.Contains(k)).Select(k => Join(parameters.Path, k)));
        return schedule;
    }

    private sealed class ScheduleParameters : IScheduleParameters
    {
        private readonly DeepSpeedConfigReader _reader;

        public ScheduleParameters(DeepSpeedConfigReader reader, string path) => (_reader, Path) = (reader, path);

        public string Path { get; }

        public Dictionary<string, JsonElement> Values { get; } = new();

        public HashSet<string> Read { get; } = new();

        public double? Number(string key, double? whenAbsent = null) => Get(key, _reader.Number, whenAbsent);

        public int? Int(string key) => Get(key, _reader.Int, null);

        public bool? Bool(string key) => Get(key, _reader.Bool, null);

        public string? String(string key)
        {
            Read.Add(key);
            return Values.TryGetValue(key, out var value) ? _reader.String(value, Join(Path, key)) : null;
        }

        public bool IsAuto(string key) => Values.TryGetValue(key, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() == "auto";

        public Exception Error(string key, string message) => _reader.Error(Join(Path, key), message);

        private T? Get<T>(string key, Func<JsonElement, string, T> read, T? whenAbsent) where T : struct
        {
            Read.Add(key);
            return Values.TryGetValue(key, out var value) ? _reader.AutoOr(value, Join(Path, key), read) : whenAbsent;
        }
    }

    private void ReadZeroOptimization(JsonElement block, string path, ZeroOptimizationOptions zero)
    {
        foreach (var (key, value, keyPath) in Properties(block, path))
        {
            switch (key)
            {
                case "stage": zero.Stage = Int(value, keyPath); break;
                case "overlap_comm": zero.OverlapCommunication = Bool(value, keyPath); break;
                case "reduce_bucket_size": zero.ReduceBucketSize = AutoOr(value, keyPath, Long) ?? zero.ReduceBucketSize; break;
                case "contiguous_gradients":
                    Bool(value, keyPath); // a bool, checked; stage 0 always keeps the gradients in one contiguous buffer
                    break;
                case "allgather_bucket_size" or "allgather_partitions" or "reduce_scatter":
                    break; // stage 1+ settings: nothing is partitioned at stage 0
                case "offload_optimizer" or "offload_param": RequireNoOffload(value, keyPath); break;
                default: _unknownKeys.Add(keyPath); break;
            }
        }
    }

    // The seed configs write "offload_optimizer": false; a device block asks for ZeRO-Offload, which needs stage 1 or more.
    private void RequireNoOffload(JsonElement value, string path)
    {
        bool off = value.ValueKind switch
        {
            JsonValueKind.False or JsonValueKind.Null => true,
            JsonValueKind.True => false,
            JsonValueKind.Object => !value.TryGetProperty("device", out var device) || device.ValueKind == JsonValueKind.String && device.GetString() == "none",
            _ => throw Error(path, $"expected false or an object, got {Describe(value)}"),
        };
        if (!off)
            throw Error(path, "offloading needs ZeRO stage 1 or more; this trainer does stage 0, which keeps everything on each rank. Remove it or set it to false");
    }

    private void ReadDataTypes(JsonElement block, string path, DeepSpeedOptions options)
    {
        foreach (var (key, value, keyPath) in Properties(block, path))
        {
            if (key == "grad_accum_dtype")
                options.GradientAccumulationDataType = value.ValueKind == JsonValueKind.Null ? null : ReadDataType(value, keyPath);
            else
                _unknownKeys.Add(keyPath);
        }
    }

    // DeepSpeed's names for the three types (its DtypeEnum).
    private ZeroPrecision ReadDataType(JsonElement value, string path) => String(value, path).ToLowerInvariant() switch
    {
        "fp32" or "float32" or "float" => ZeroPrecision.Fp32,
        "fp16" or "float16" or "half" => ZeroPrecision.Fp16,
        "bf16" or "bfloat16" or "bfloat" => ZeroPrecision.Bf16,
        var type => throw Error(path, $"expected \"fp32\", \"fp16\" or \"bf16\", got \"{type}\""),
    };

    // System.Text.Json checks a string's escapes only when it is read: an unpaired surrogate ("\ud800") parses, then
    // throws InvalidOperationException from GetString or a property's Name. Every key and string is read once here first.
    private void RequireReadableText(JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                int index = 0;
                foreach (var property in element.EnumerateObject())
                {
                    string key;
                    try
                    {
                        key = property.Name;
                    }
                    catch (InvalidOperationException e)
                    {
                        string raw = property.ToString(); // the member as written, key escapes undecoded
                        throw Error(path.Length == 0 ? "(root)" : path, $"key {index} of the object ({raw[..Math.Min(40, raw.Length)]}) is not valid text: {e.Message}");
                    }
                    RequireReadableText(property.Value, Join(path, key));
                    index++;
                }
                break;
            case JsonValueKind.Array:
                int item = 0;
                foreach (var value in element.EnumerateArray())
                    RequireReadableText(value, $"{path}[{item++}]");
                break;
            case JsonValueKind.String:
                try
                {
                    element.GetString();
                }
                catch (InvalidOperationException e)
                {
                    throw Error(path, $"the string {element.GetRawText()} is not valid text: {e.Message}");
                }
                break;
        }
    }

    private IEnumerable<(string Key, JsonElement Value, string Path)> Properties(JsonElement element, string path)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw Error(path.Length == 0 ? "(root)" : path, $"expected an object, got {Describe(element)}");
        return element.EnumerateObject().Select(p => (p.Name, p.Value, Join(path, p.Name))).ToList();
    }

    private static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;

    private T? AutoOr<T>(JsonElement value, string path, Func<JsonElement, string, T> read) where T : struct =>
        value.ValueKind == JsonValueKind.String && value.GetString() == "auto" ? null : read(value, path);

    private int Int(JsonElement value, string path) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int result) ? result : throw Error(path, $"expected integer, got {Describe(value)}");

    private long Long(JsonElement value, string path) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) < 9e15 ? (long)d
            : throw Error(path, $"expected integer, got {Describe(value)}");

    // A number beyond double's range (1e999) reads as infinity: no setting takes that, so it is refused here, by its key.
    private double Number(JsonElement value, string path) =>
        value.ValueKind != JsonValueKind.Number ? throw Error(path, $"expected number, got {Describe(value)}")
            : double.IsFinite(value.GetDouble()) ? value.GetDouble() : throw Error(path, $"expected a finite number, got {Describe(value)}");

    private bool Bool(JsonElement value, string path) => value.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw Error(path, $"expected true or false, got {Describe(value)}"),
    };

    private string String(JsonElement value, string path) =>
        value.ValueKind == JsonValueKind.String ? value.GetString()! : throw Error(path, $"expected string, got {Describe(value)}");

    private (double First, double Second) NumberPair(JsonElement value, string path)
    {
        if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() != 2)
            throw Error(path, $"expected an array of two numbers, got {Describe(value)}");
        return (Number(value[0], path + "[0]"), Number(value[1], path + "[1]"));
    }

    private static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => $"\"{value.GetString()}\"",
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        _ => value.GetRawText(),
    };

    private InvalidDataException Error(string path, string message) => new($"{_source}: {path}: {message}.");
}
