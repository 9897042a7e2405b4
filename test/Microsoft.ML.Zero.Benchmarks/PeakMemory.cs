namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>The process's peak resident set size, as the kernel counts it (native libtorch memory included).</summary>
internal static class PeakMemory
{
    public static long ResidentBytes()
    {
        const string Key = "VmHWM:";
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(Key, StringComparison.Ordinal))
            ?? throw new PlatformNotSupportedException("/proc/self/status has no VmHWM line: peak memory is measured on Linux only.");
        var kilobytes = line[Key.Length..].Trim().Split(' ')[0];
        return long.Parse(kilobytes) * 1024;
    }
}
