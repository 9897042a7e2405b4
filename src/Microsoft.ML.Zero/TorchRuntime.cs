using TorchSharp;

namespace Microsoft.ML.Zero;

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
            torch.InitializeDeviceType(DeviceType.CPU);
            return null;
        }
        catch (Exception exception)
        {
            return exception;
        }
    }

    /// <summary>
    /// Gives each of <paramref name="ranksInProcess"/> rank threads an equal share of the cores for the duration of the
    /// returned scope: libtorch's thread count is process-wide, and N ranks each using every core oversubscribe the CPU.
    /// </summary>
    public static IDisposable ShareCoresAmongRanks(int ranksInProcess)
    {
        int previous = torch.get_num_threads();
        torch.set_num_threads(Math.Max(1, Environment.ProcessorCount / ranksInProcess));
        return new RestoreThreads(previous);
    }

    private sealed class RestoreThreads(int threads) : IDisposable
    {
        public void Dispose() => torch.set_num_threads(threads);
    }
}
