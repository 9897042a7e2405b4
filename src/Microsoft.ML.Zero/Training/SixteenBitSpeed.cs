using System.Diagnostics;
using System.Runtime.Intrinsics.X86;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.Training;

/// <summary>
/// Whether this machine computes a 16-bit format (bf16 or fp16) natively, i.e. its matmuls run at least as fast as
/// fp32's, and the evidence: a timed matmul in both types, or the environment variable that overrides it.
/// </summary>
/// <param name="Format">Bf16 or Fp16.</param>
/// <param name="Native">The format's matmuls run at least as fast as fp32's here.</param>
/// <param name="Reason">What decided, for the log, e.g. "bf16 matmul 95x slower than fp32 (this CPU has neither AVX512_BF16 nor AMX-BF16)".</param>
internal sealed record SixteenBitSpeed(ZeroPrecision Format, bool Native, string Reason)
{
    private static readonly Lazy<double> Fp32Rate = new(() => MatmulRate(ScalarType.Float32));
    private static readonly Lazy<double> Bf16Rate = new(() => MatmulRate(ScalarType.BFloat16));
    private static readonly Lazy<double> Fp16Rate = new(() => MatmulRate(ScalarType.Float16));

    /// <summary>The variable that overrides the measurement: "0" (emulated, slow) or "1" (native).</summary>
    public static string OverrideVariable(ZeroPrecision format) => format == ZeroPrecision.Fp16 ? "ZERO_NATIVE_FP16" : "ZERO_NATIVE_BF16";

    /// <summary>
    /// What this process's CPU does with <paramref name="format"/> (Bf16 or Fp16). The matmuls are timed once per
    /// process and format, the first time they are asked for (a few milliseconds; about 70 ms where bf16 is emulated);
    /// the override variable is read every time.
    /// </summary>
    public static SixteenBitSpeed OfThisCpu(ZeroPrecision format)
    {
        if (format is not (ZeroPrecision.Bf16 or ZeroPrecision.Fp16))
            throw new ArgumentOutOfRangeException(nameof(format), format, "Expected Bf16 or Fp16.");
        string name = format == ZeroPrecision.Bf16 ? "bf16" : "fp16";
        string variable = OverrideVariable(format);
        switch (Environment.GetEnvironmentVariable(variable))
        {
            case null or "":
                break;
            case "0":
                return new(format, false, $"{variable}=0 marks this CPU as without native {name}");
            case "1":
                return new(format, true, $"{variable}=1 marks this CPU as computing {name} natively");
            case var other:
                throw new InvalidOperationException($"The environment variable {variable} is '{other}'; expected 0 (no native {name}), 1 (native {name}) or unset (measure).");
        }
        TorchRuntime.EnsureLoaded();
        double ratio = (format == ZeroPrecision.Bf16 ? Bf16Rate : Fp16Rate).Value / Fp32Rate.Value;
        string speed = ratio >= 1 ? $"{ratio:F1}x as fast as fp32" : $"{1 / ratio:F0}x slower than fp32";
        return new(format, ratio >= 1, $"{name} matmul {speed}{Features(format)}");
    }

    // Best rate of a 256x256 matmul over a few repetitions: 0.2 ms in fp32 here, ~17 ms in bf16 where it is emulated.
    private static double MatmulRate(ScalarType type)
    {
        const int N = 256;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var a = ones(N, N).to(type);
        var b = ones(N, N).to(type);
        a.matmul(b).Dispose(); // first call: kernel selection and buffers
        double best = double.MaxValue;
        var total = Stopwatch.StartNew();
        for (int rep = 0; rep < 3 || total.ElapsedMilliseconds < 10; rep++)
        {
            long start = Stopwatch.GetTimestamp();
            a.matmul(b).Dispose();
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        return 2.0 * N * N * N / best;
    }

    // The CPU feature bits of libtorch's fast 16-bit kernels (CPUID leaf 7), named as in /proc/cpuinfo's flags.
    private static string Features(ZeroPrecision format)
    {
        if (!X86Base.IsSupported)
            return "";
        int leaf0Edx = X86Base.CpuId(7, 0).Edx, leaf1Eax = X86Base.CpuId(7, 1).Eax;
        var flags = format == ZeroPrecision.Bf16
            ? new[] { ("AVX512_BF16", leaf1Eax, 5), ("AMX-BF16", leaf0Edx, 22) }
            : new[] { ("AVX512_FP16", leaf0Edx, 23), ("AMX-FP16", leaf1Eax, 21) };
        var present = flags.Where(f => (f.Item2 >> f.Item3 & 1) != 0).Select(f => f.Item1).ToList();
        return present.Count == 0 ? $" (this CPU has neither {flags[0].Item1} nor {flags[1].Item1})" : $" (this CPU has {string.Join(" and ", present)})";
    }
}
