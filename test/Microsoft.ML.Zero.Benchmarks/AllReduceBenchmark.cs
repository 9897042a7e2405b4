using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Distributed.Mpi;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>
/// Sum all-reduce of fp32 buffers over 2 ranks, in-process (threads) and under mpirun (processes on this machine),
/// against one memcpy of the same buffer: the floor for any same-host reduction.
/// </summary>
internal static class AllReduceBenchmark
{
    public const string Name = "allreduce", MpiChild = "allreduce-mpi";

    // 4 MiB, DeepSpeed's 25 MiB bucket, and BERT-base's 110 M parameters as fp32 gradients.
    private static readonly (string Label, int Floats)[] Sizes = { ("4 MiB", 1 << 20), ("25 MiB", 25 << 18), ("BERT-base, 440 MB", 110_000_000) };

    public sealed record Result(double[] Seconds);

    private static int Repeats(int floats) => floats > 50_000_000 ? 7 : 31;

    // Small all-reduces vary from one launch to the next here (medians 2x apart at 4 MiB), so each figure pools the
    // samples of several launches: fresh threads, or a fresh mpirun.
    private static int Launches(int floats) => floats > 50_000_000 ? 1 : 5;

    private static Samples Pooled(int launches, Func<Samples> measure) =>
        new(Enumerable.Range(0, launches).SelectMany(_ => Collected(measure).Seconds).ToArray());

    // Collects the earlier launches' buffers first: a background collection during the in-process launch would take
    // one of this machine's two cores from the rank threads.
    private static Samples Collected(Func<Samples> measure)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return measure();
    }

    public static string Run()
    {
        var lines = new List<string>
        {
            "## All-reduce bandwidth",
            "",
            "Sum all-reduce of an fp32 buffer over 2 ranks on this machine; bandwidth is buffer bytes / time (algorithm bandwidth). " +
            "Before each round every rank writes its whole buffer, as backward writes the gradients, and the ranks meet at two barriers; " +
            "only the all-reduce is timed. memcpy is one copy of the same buffer on one core, its source written just before. " +
            "Median with interquartile range; for 4 and 25 MiB over the samples of 5 launches (fresh threads or a fresh mpirun), " +
            "since small all-reduces vary from one launch to the next here (medians up to 2x apart at 4 MiB).",
            "",
            "| buffer | memcpy | in-process (threads) | vs memcpy | MPI (2 processes) | vs memcpy | MPI, shared memory off | vs memcpy | MPI, sent as bf16 | vs memcpy |",
            "|---|---|---|---|---|---|---|---|---|---|",
        };
        foreach (var (label, floats) in Sizes)
        {
            Console.WriteLine($"  {label}");
            int launches = Launches(floats);
            var copy = Pooled(launches, () => Memcpy(floats));
            var inProcess = Pooled(launches, () => InProcess(floats));
            Samples Mpi(ZeroPrecision format, bool sharedMemory) => Pooled(launches, () =>
                new(ChildProcess.RunUnderMpi<Result>(2, MpiChild, floats.ToString(), format.ToString(), sharedMemory.ToString()).Seconds));
            var mpi = Mpi(ZeroPrecision.Fp32, sharedMemory: true);
            var mpiOverMpi = Mpi(ZeroPrecision.Fp32, sharedMemory: false);
            var mpiBf16 = Mpi(ZeroPrecision.Bf16, sharedMemory: true);
            double bytes = floats * 4.0;
            string Column(Samples samples) => $"{samples.Milliseconds()}, {bytes / samples.Median / 1e9:F1} GB/s | {samples.Median / copy.Median:F2}x";
            lines.Add($"| {label} | {copy.Milliseconds()}, {bytes / copy.Median / 1e9:F1} GB/s | {Column(inProcess)} | {Column(mpi)} | {Column(mpiOverMpi)} | {Column(mpiBf16)} |");
        }
        lines.Add("");
        lines.Add("Goal: the same-host path within 1.5x of memcpy. In-process ranks reduce in shared memory: rank r adds up chunk r of " +
            "every rank's buffer and writes the sum into all of them in the same pass, so each of the 2 cores reads and writes half of " +
            "every buffer, and from 25 MiB up the all-reduce takes less time than one core's memcpy. MPI processes on one machine do the " +
            "same: the buffer comes from the communicator, which places every rank's in /dev/shm and maps the others', and the ranks " +
            "synchronize through counters in those files (two barriers per all-reduce: a 50 µs spin, then a futex). A rank that reaches a " +
            "barrier more than 50 µs before its peer sleeps, and waking it takes about as long as a 4 MiB sum; so before each timed round " +
            "the ranks meet at two barriers, and both are running when it starts. Even so, and pooled over 5 launches, the 4 MiB ratios move " +
            "from one run of this section to the next on this machine: over six runs they were 0.85x to 1.9x, within 1.5x in five. In training " +
            "a rank that waits longer for its peer pays that wake-up once per all-reduce. The spin stays short because with overlap_comm " +
            "the waiting thread shares its cores with backward. " +
            "\"Shared memory off\" (ZERO_MPI_SHARED_MEMORY=0) is OpenMPI's MPI_Allreduce " +
            "over its shared-memory transport, with the settings the communicator applies before MPI_Init (glibc keeps freed memory mapped, " +
            "segmented ring all-reduce): without them the 440 MB reduction took 1.13 s here. " +
            "\"Sent as bf16\" sums as many gradients as bf16 values (communication_data_type bf16) through the same shared memory: half the " +
            "bytes, each addition widened to fp32 and rounded back to bf16; the bandwidth still counts fp32 bytes. " + Machine.Note());
        return string.Join('\n', lines);
    }

    private static Samples Memcpy(int floats)
    {
        var source = new float[floats];
        var target = new float[floats];
        return Samples.Measure(() => source.AsSpan().CopyTo(target), Repeats(floats), before: () => source.AsSpan().Fill(1));
    }

    private static Samples InProcess(int floats)
    {
        var times = InProcessLauncher.Run(2, TimeSpan.FromMinutes(2), communicator =>
        {
            var buffer = new float[floats];
            return Samples.Measure(() => communicator.AllReduce(buffer, ReduceOperation.Sum), Repeats(floats), before: () =>
            {
                buffer.AsSpan().Fill(1);
                communicator.Barrier();
                communicator.Barrier(); // a rank that slept through the first is running again now: both start together
            });
        });
        return times[0];
    }

    /// <summary>
    /// The side of one mpirun process: the same loop over MPI, on a buffer from the communicator as the engine's
    /// gradients are (in shared memory unless <paramref name="sharedMemory"/> is false).
    /// </summary>
    public static Result MeasureMpi(int floats, ZeroPrecision format, bool sharedMemory)
    {
        if (!sharedMemory)
            Environment.SetEnvironmentVariable(MpiCommunicator.SharedMemoryVariable, "0");
        var launch = MpiLaunchEnvironment.Detect() ?? throw new InvalidOperationException("Run under mpirun.");
        var communicator = MpiCommunicator.World(launch, TimeSpan.FromMinutes(2));
        using var reduceBuffer = communicator.AllocateReduceBuffer(floats, format.TensorType());
        var samples = Samples.Measure(() =>
        {
            if (format == ZeroPrecision.Fp32)
                communicator.AllReduce(TensorMemory.AsSpan(reduceBuffer.Values), ReduceOperation.Sum);
            else
                communicator.AllReduce(TensorMemory.AsBits(reduceBuffer.Values), format.TensorType());
        }, Repeats(floats), before: () =>
        {
            // Written as backward writes gradients: by this thread, not libtorch's pool (whose threads would still be spinning).
            if (format == ZeroPrecision.Fp32)
                TensorMemory.AsSpan(reduceBuffer.Values).Fill(1);
            else
                TensorMemory.AsBits(reduceBuffer.Values).Fill(format == ZeroPrecision.Bf16 ? (ushort)0x3F80 : (ushort)0x3C00);
            communicator.Barrier();
            communicator.Barrier(); // a rank that slept through the first is running again now: both start together
        });
        return new Result(samples.Seconds);
    }
}
