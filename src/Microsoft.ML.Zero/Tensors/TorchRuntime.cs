using System.Runtime.InteropServices;
using TorchSharp;

namespace Microsoft.ML.Zero.Tensors;

/// <summary>Loads TorchSharp's native library once, turning a load failure into an actionable message.</summary>
internal static class TorchRuntime
{
    private static readonly Lazy<Exception?> LoadFailure = new(TryLoad);

    public static void EnsureLoaded()
    {
        if (LoadFailure.Value is { } failure)
        {
            throw new InvalidOperationException(
                "TorchSharp's native library (libLibTorchSharp) could not be loaded. On Linux hosts whose libstdc++ is older " +
                "than GCC 13 (Debian 12, Ubuntu 22.04) the copy in the build output must be patched: reference the " +
                "Microsoft.ML.Zero package (its build targets do it) or build this repository with ./build.sh. " +
                $"Loader error: {failure.GetBaseException().Message}", failure);
        }
    }

    private static Exception? TryLoad()
    {
        try
        {
            RequestReproducibleMkl();
            KeepFreedMemory();
            torch.InitializeDeviceType(DeviceType.CPU);
            return null;
        }
        catch (Exception exception)
        {
            return exception;
        }
    }

    /// <summary>
    /// libtorch's CPU matrix products come from MKL, which by default may pick different code paths from run to run
    /// (so two runs with the same seed differ in the last bits once rank threads run side by side). MKL's conditional
    /// numerical reproducibility mode "AUTO" keeps the fastest code path for this CPU but the same one every time.
    /// MKL reads MKL_CBWR from the native environment at its first call, so set it there, unless the user chose a value.
    /// </summary>
    private static void RequestReproducibleMkl()
    {
        const string Name = "MKL_CBWR";
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Name)))
            return;
        if (OperatingSystem.IsWindows())
            Environment.SetEnvironmentVariable(Name, "AUTO");
        else
            SetNativeEnvironmentVariable(Name, "AUTO", overwrite: 0);
    }

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetNativeEnvironmentVariable(string name, string value, int overwrite);

    /// <summary>
    /// glibc serves large allocations (activations, optimizer temporaries, MPI buffers) with fresh mmap calls and unmaps
    /// them when freed, so every training step faults in and zeroes its memory again. Keeping freed memory in the heap
    /// instead made a one-thread MiniLM step 1.1 s -> 0.6 s here, and a 440 MB MPI all-reduce 1.1 s -> 0.1 s. The cost:
    /// the process keeps its peak memory until it exits. Skipped when the user set the glibc variables themselves.
    /// </summary>
    internal static void KeepFreedMemory()
    {
        const int TrimThreshold = -1, MmapMax = -4;
        if (!OperatingSystem.IsLinux())
            return;
        // MALLOC_MMAP_MAX_ / MALLOC_TRIM_THRESHOLD_ are read at process start; mallopt sets the same in a running process.
        if (Environment.GetEnvironmentVariable("MALLOC_MMAP_MAX_") is null)
            Mallopt(MmapMax, 0);
        if (Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") is null)
            Mallopt(TrimThreshold, int.MaxValue);
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int Mallopt(int parameter, int value);

    /// <summary>
    /// Gives each of <paramref name="ranksInProcess"/> rank threads an equal share of the cores until the returned scope
    /// ends: N ranks each using every core would oversubscribe the CPU. Each rank thread must also call
    /// <see cref="UseCoreShare"/>, because OpenMP and MKL keep part of this setting per thread.
    /// </summary>
    public static IDisposable ShareCoresAmongRanks(int ranksInProcess)
    {
        int previous = torch.get_num_threads();
        UseCoreShare(ranksInProcess);
        return new RestoreThreads(previous);
    }

    /// <summary>Sets the calling thread's libtorch thread count to its share of the cores.</summary>
    public static void UseCoreShare(int ranksInProcess) => torch.set_num_threads(Math.Max(1, Environment.ProcessorCount / ranksInProcess));

    private sealed class RestoreThreads(int threads) : IDisposable
    {
        public void Dispose() => torch.set_num_threads(threads);
    }
}
