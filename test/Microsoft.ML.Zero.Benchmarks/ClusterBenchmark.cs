using Microsoft.ML.Zero.Config;

namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>
/// 2 ranks on one host (shared memory) against 2 hosts of one rank each, the hosts being network namespaces of this
/// machine joined by veth (eng/netns-cluster.sh): what MPI's TCP path costs in the all-reduce and in a MiniLM step.
/// </summary>
internal static class ClusterBenchmark
{
    public const string Name = "cluster";

    // DeepSpeed's 25 MiB bucket, and as many floats as the MiniLM classifier has gradients (22.7 M, 91 MB).
    private static readonly (string Label, int Floats)[] Sizes = { ("25 MiB", 25 << 18), ("MiniLM-sized, 91 MB", 22_700_000) };

    public static string Run()
    {
        string script = Path.Combine(RepositoryRoot(), "eng", "netns-cluster.sh");
        string state = Script(script, "up", "2").Trim();
        try
        {
            string hostfile = Path.Combine(state, "hostfile");
            // Each host believes it has the whole machine: give each rank one core, as 2 ranks on one host get.
            var launcher = new List<string> { "mpirun", "--allow-run-as-root", "--bind-to", "none", "-x", "DOTNET_PROCESSOR_COUNT=1", "--hostfile", hostfile, "-np", "2" };
            launcher.InsertRange(2, File.ReadAllText(Path.Combine(state, "mca")).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            Samples OneHost(params string[] arguments) => new(ChildProcess.RunUnderMpi<AllReduceBenchmark.Result>(2, arguments).Seconds);
            Samples TwoHosts(params string[] arguments) => new(ChildProcess.RunWith<AllReduceBenchmark.Result>(launcher.ToArray(), arguments).Seconds);

            var lines = new List<string>
            {
                "## Two hosts over veth against one host",
                "",
                "2 ranks on one host (gradients summed in /dev/shm) against 2 hosts of 1 rank each (OpenMPI's TCP transport between them). " +
                "The hosts are network namespaces of this machine, each with its own hostname and /dev/shm, joined by veth pairs to a bridge " +
                "(`eng/netns-cluster.sh up 2`). **veth is not a real network**: the bytes are copied by this machine's kernel, with no wire, " +
                "NIC or switch, so its bandwidth is memory bandwidth and its latency microseconds; the ratio shows what the TCP path itself " +
                "costs (sockets, copies, MPI's TCP protocol), a floor for any real network. Each rank has one core in both layouts. " +
                "All-reduce: sum of an fp32 buffer written before each round, rank 0's times, median with interquartile range. " +
                "Step: one optimizer step of the MiniLM classifier (fp32, 16 sentences of up to 64 tokens per rank, all-reduce after backward), " +
                "12 steps after warm-up.",
                "",
                "| measure | 1 host x 2 ranks | 2 hosts x 1 rank (veth) | ratio |",
                "|---|---|---|---|",
            };
            foreach (var (label, floats) in Sizes)
            {
                Console.WriteLine($"  all-reduce {label}");
                string[] child = { AllReduceBenchmark.MpiChild, floats.ToString(), ZeroPrecision.Fp32.ToString(), true.ToString() };
                var one = OneHost(child);
                var two = TwoHosts(child);
                double bytes = floats * 4.0;
                lines.Add($"| all-reduce, {label} | {one.Milliseconds()}, {bytes / one.Median / 1e9:F1} GB/s | {two.Milliseconds()}, {bytes / two.Median / 1e9:F2} GB/s | {two.Median / one.Median:F1}x |");
            }
            Console.WriteLine("  MiniLM step");
            var stepOne = OneHost(OverlapBenchmark.Child, "off");
            var stepTwo = TwoHosts(OverlapBenchmark.Child, "off");
            lines.Add($"| MiniLM classifier step | {stepOne.Milliseconds()} | {stepTwo.Milliseconds()} | {stepTwo.Median / stepOne.Median:F2}x |");
            lines.Add("");
            lines.Add("One launch per figure; small all-reduces vary from one launch to the next (see \"All-reduce bandwidth\"). On one host the " +
                "all-reduce is a sum in shared memory; between hosts each rank sends and receives at least its whole buffer through the " +
                "kernel's TCP sockets (`btl tcp`). A 10 Gbit/s link's line rate is 1.25 GB/s, and a real network adds latency that veth does " +
                "not have: expect the step's share of communication to be larger there, not smaller. " + Machine.Note());
            return string.Join('\n', lines);
        }
        finally
        {
            Script(script, "down");
        }
    }

    private static string Script(string script, params string[] arguments)
    {
        var start = new System.Diagnostics.ProcessStartInfo("/bin/bash") { RedirectStandardOutput = true };
        start.ArgumentList.Add(script);
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = System.Diagnostics.Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{script} {string.Join(' ', arguments)} failed with exit code {process.ExitCode} (it needs root and iproute2).");
        return output;
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Microsoft.ML.Zero.sln")))
                return dir.FullName;
        throw new DirectoryNotFoundException("Run from inside the repository.");
    }
}
