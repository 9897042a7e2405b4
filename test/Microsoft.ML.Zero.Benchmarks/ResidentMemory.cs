namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>The process's resident set size, peak and current, as the kernel counts it (native libtorch memory included).</summary>
internal static class ResidentMemory
{
    public static long Peak() => StatusBytes("VmHWM:");

    /// <summary>The process's resident set size now.</summary>
    public static long Current() => StatusBytes("VmRSS:");

    private static long StatusBytes(string key)
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal))
            ?? throw new PlatformNotSupportedException($"/proc/self/status has no {key} line: memory is measured on Linux only.");
        var kilobytes = line[key.Length..].Trim().Split(' ')[0];
        return long.Parse(kilobytes) * 1024;
    }
}
