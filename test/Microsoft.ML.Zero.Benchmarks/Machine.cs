namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>
/// The machine a figure was measured on. Speeds differ by CPU kind (bf16 is ~100x slower than fp32 without AVX512_BF16
/// or AMX), so every section names the CPU model and its vector features.
/// </summary>
internal static class Machine
{
    // The /proc/cpuinfo flags that decide libtorch's kernels, and how the report names them.
    private static readonly (string Flag, string Name)[] Features =
        { ("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_bf16", "AVX512_BF16"), ("amx_bf16", "AMX-BF16") };

    // Variables that cap the instruction sets oneDNN, ATen, MKL and OpenBLAS use, so a CPU with native bf16 can stand in for an AVX2 one.
    private static readonly string[] IsaLimits = { "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "OPENBLAS_CORETYPE" };

    /// <summary>"Intel(R) Xeon(R) Processor; AVX2, AVX-512, AVX512_BF16, AMX-BF16", plus any instruction-set limit in force.</summary>
    public static string Cpu
    {
        get
        {
            string info = File.Exists("/proc/cpuinfo") ? File.ReadAllText("/proc/cpuinfo") : "";
            string model = info.Split('\n').FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
            var flags = info.Split('\n').FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal))?.Split(':', 2)[1].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet()
                ?? new HashSet<string>();
            var present = Features.Where(f => flags.Contains(f.Flag)).Select(f => f.Name).ToList();
            var limits = IsaLimits.Where(v => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(v))).Select(v => $"{v}={Environment.GetEnvironmentVariable(v)}").ToList();
            return $"{model}; {(present.Count == 0 ? "no AVX2" : string.Join(", ", present))}" +
                (limits.Count == 0 ? "" : $"; libtorch limited by {string.Join(" ", limits)}");
        }
    }

    /// <summary>The closing line of a section: date, cores, CPU and runtime.</summary>
    public static string Note() => $"Measured {DateTime.UtcNow:yyyy-MM-dd} on {Environment.ProcessorCount} cores ({Cpu}), .NET {Environment.Version}.";
}
