using System.Runtime.InteropServices;

namespace Microsoft.ML.Zero.Distributed.Mpi;

/// <summary>
/// Linux futexes on a 32-bit word in memory that processes share: a process sleeps until the word changes, and the
/// process that changes it wakes the sleepers (shared, not FUTEX_PRIVATE, since the word lives in a /dev/shm mapping).
/// </summary>
internal static unsafe class Futex
{
    private const int WaitOperation = 0, WakeOperation = 1;

    // futex(2)'s system call number: x86-64 and arm64 (the platforms TorchSharp ships natives for).
    private static readonly long SystemCall = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 98 : 202;

    // Sleeps are bounded so the caller re-reads the word now and then, whatever happens to wake-ups.
    private static readonly TimeSpec MaxSleep = new() { Seconds = 0, Nanoseconds = 100_000_000 };

    /// <summary>Sleeps while *<paramref name="word"/> equals <paramref name="expected"/>, at most 100 ms.</summary>
    public static void Wait(int* word, int expected)
    {
        var timeout = MaxSleep;
        _ = Call(SystemCall, word, WaitOperation, expected, &timeout, null, 0);
    }

    /// <summary>Wakes every process sleeping on <paramref name="word"/>.</summary>
    public static void WakeAll(int* word) => _ = Call(SystemCall, word, WakeOperation, int.MaxValue, null, null, 0);

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "syscall")]
    private static extern long Call(long number, int* word, int operation, int value, TimeSpec* timeout, int* word2, int value3);
}
