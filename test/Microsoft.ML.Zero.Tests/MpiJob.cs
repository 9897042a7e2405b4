using System.Diagnostics;
using Microsoft.ML.Zero.Distributed.Mpi;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// What each process of a test MPI job runs (the test assembly's "mpi-train" mode): the iris MLP on 2 ranks, with an
/// optional fault on one rank. Rank 0 writes the trained weights.
/// </summary>
public static class MpiJob
{
    public static ZeroTrainerOptions Options(int epochs, TimeSpan timeout, ZeroDataSharding sharding = ZeroDataSharding.SplitRows, string? checkpoints = null,
        ZeroPrecision? communicationDataType = null, bool overlap = false, ZeroPrecision precision = ZeroPrecision.Fp32, ZeroPrecision? gradientAccumulationDataType = null, int worldSize = 2) => new()
    {
        // Overlapping reduces the iris MLP's 739 gradients in 4 buckets of about 200.
        DeepSpeed = new DeepSpeedOptions
        {
            CommunicationDataType = communicationDataType,
            Precision = precision,
            GradientAccumulationDataType = gradientAccumulationDataType,
            ZeroOptimization = new ZeroOptimizationOptions { OverlapCommunication = overlap, ReduceBucketSize = 200 },
        },
        WorldSize = worldSize, BatchSize = 8, MaxEpoch = epochs, Seed = 7, HiddenLayerSizes = new[] { 32, 16 }, LearningRate = 0.01,
        CommunicationTimeout = timeout, Sharding = sharding, CheckpointDirectory = checkpoints, CheckpointEverySteps = checkpoints is null ? 0 : 100,
    };

    /// <summary>The long run of the kill-and-resume test: 200 epochs of 10 steps.</summary>
    public const int LongRunEpochs = 200;

    /// <summary>The steps of the "cluster-checkpoint" run (10 an epoch), and its communication timeout.</summary>
    public const int ClusterRunSteps = 400;

    public static readonly TimeSpan ClusterTimeout = TimeSpan.FromSeconds(10);

    public static string CheckpointFolder(string weightsPath) => Path.Combine(Path.GetDirectoryName(weightsPath)!, "checkpoints");

    /// <summary>
    /// mpi-train &lt;weights.bin&gt; none|overlap|bf16-wire|bf16-model-wire|bf16-accumulation|two-machines|two-machines-bf16-wire|fail-rank|kill-rank|sigterm-rank|separate-shm|stall-rank|uneven|uneven-split|uneven-balanced|long|checkpoint-kill|checkpoint-resume|similarity|cluster|cluster-checkpoint|ner &lt;rank&gt;
    /// </summary>
    public static int Run(string weightsPath, string fault, int faultRank)
    {
        int rank = int.Parse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_RANK") ?? "0");
        bool faulty = rank == faultRank;
        if (fault == "similarity")
        {
            // The sentence-similarity trainer on a tiny BERT the test wrote beside the weights file.
            var weights = SimilarityWeights(Path.Combine(Path.GetDirectoryName(weightsPath)!, "tiny-bert"));
            if (rank == 0)
                WriteWeights(weightsPath, weights);
            return 0;
        }
        if (fault == "ner")
        {
            // The token-classification trainer on a tiny BERT the test wrote beside the weights file.
            var weights = TaggerWeights(Path.Combine(Path.GetDirectoryName(weightsPath)!, "tiny-bert"));
            if (rank == 0)
                WriteWeights(weightsPath, weights);
            return 0;
        }
        if (fault == "engine")
        {
            // The ZeroEngine loop rather than the trainer: each process is one rank.
            var trained = IrisCnnEngineTraining.Train(worldSize: 2, microBatch: 8);
            if (rank == 0)
                WriteWeights(weightsPath, trained);
            return 0;
        }
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Prepared(mlContext);
        int epochs = 3;
        var timeout = TimeSpan.FromSeconds(60);
        var sharding = ZeroDataSharding.SplitRows;
        string? checkpoints = null;
        ZeroPrecision? wire = null;
        bool overlap = false;
        ZeroPrecision precision = ZeroPrecision.Fp32;
        ZeroPrecision? accumulation = null;
        int worldSize = 2;
        switch (fault)
        {
            case "overlap":
                overlap = true;
                break;
            case "bf16-wire":
                wire = ZeroPrecision.Bf16;
                break;
            case "two-machines" or "two-machines-bf16-wire":
                // 4 processes on this machine that say they run on two.
                Environment.SetEnvironmentVariable(Distributed.Mpi.MpiCommunicator.HostVariable, $"machine{rank / 2}");
                worldSize = 4;
                if (fault == "two-machines-bf16-wire")
                    wire = ZeroPrecision.Bf16;
                break;
            case "cluster":
                // Real hosts (eng/netns-cluster.sh): as many ranks as mpirun started, wherever it placed them.
                worldSize = int.Parse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE")!);
                break;
            case "cluster-checkpoint":
                // A run with checkpoints (resumed when one is there), and a timeout short enough for a test to wait out a dead link.
                epochs = ClusterRunSteps / 10;
                checkpoints = CheckpointFolder(weightsPath);
                timeout = ClusterTimeout;
                break;
            case "bf16-model-wire":
                precision = ZeroPrecision.Bf16;
                wire = ZeroPrecision.Bf16;
                break;
            case "bf16-accumulation":
                precision = ZeroPrecision.Bf16;
                accumulation = ZeroPrecision.Bf16;
                break;
            case "long":
                epochs = LongRunEpochs;
                break;
            case "checkpoint-resume":
                epochs = LongRunEpochs;
                checkpoints = CheckpointFolder(weightsPath);
                break;
            case "checkpoint-kill":
                epochs = LongRunEpochs;
                checkpoints = CheckpointFolder(weightsPath);
                if (faulty)
                {
                    // Dies (SIGKILL, no clean-up) soon after the first checkpoint is complete, in the middle of training.
                    string latest = Path.Combine(checkpoints, "latest");
                    _ = new Timer(_ => { if (File.Exists(latest)) Process.GetCurrentProcess().Kill(); }, null, TimeSpan.Zero, TimeSpan.FromMilliseconds(20));
                }
                break;
            case "uneven" or "uneven-split" or "uneven-balanced":
                // Each rank reads its own rows, all three species on both: 112 on rank 0, 38 on rank 1, shards 9 batches apart.
                // By species 37, 38, 37 and 13, 12, 13: balanced weights from either rank's counts alone are not 1.
                var own = Datasets.Iris().Where((_, i) => (i % 4 == 0) == (rank == 1));
                data = IrisFixtures.Prepare(mlContext, mlContext.Data.LoadFromEnumerable(own));
                sharding = fault == "uneven-split" ? ZeroDataSharding.SplitRows : ZeroDataSharding.InputPerRank;
                break;
            case "fail-rank" when faulty:
                // This rank's copy of the data has a row with a missing measurement: reading its shard fails.
                var rows = Datasets.Iris();
                rows[17].Features[2] = float.NaN;
                data = IrisFixtures.Prepare(mlContext, mlContext.Data.LoadFromEnumerable(rows));
                break;
            case "sigterm-rank":
                epochs = LongRunEpochs;
                checkpoints = CheckpointFolder(weightsPath);
                if (faulty)
                {
                    // Told to stop (SIGTERM, as a scheduler or mpirun sends it) once the first checkpoint is complete.
                    string latest = Path.Combine(checkpoints, "latest");
                    Timer? poll = null;
                    poll = new Timer(_ =>
                    {
                        if (!File.Exists(latest))
                            return;
                        poll!.Dispose();
                        Process.Start("kill", $"-TERM {Environment.ProcessId}")!.WaitForExit();
                    }, null, TimeSpan.Zero, TimeSpan.FromMilliseconds(20));
                }
                break;
            case "separate-shm":
                // Same host name, separate shared memory (a container without --ipc host): each rank sees its own folder.
                string folder = Path.Combine(Path.GetDirectoryName(weightsPath)!, $"shm{rank}");
                Directory.CreateDirectory(folder);
                Environment.SetEnvironmentVariable(MpiCommunicator.SharedMemoryFolderVariable, folder);
                break;
            case "kill-rank":
                epochs = 100_000;
                if (faulty)
                    _ = new Timer(_ => Process.GetCurrentProcess().Kill(), null, TimeSpan.FromSeconds(3), Timeout.InfiniteTimeSpan);
                break;
            case "stall-rank":
                timeout = TimeSpan.FromSeconds(5);
                if (faulty)
                {
                    // Counting rows is the first pass over the data; this rank hangs in the second, reading its shard,
                    // while the other rank has gone on to the first step's first collective.
                    int seen = 0;
                    data = mlContext.Data.FilterByCustomPredicate<IrisFeatures>(data, _ =>
                    {
                        if (Interlocked.Increment(ref seen) > 160)
                            Thread.Sleep(Timeout.Infinite);
                        return false;
                    });
                }
                break;
        }
        var options = Options(epochs, timeout, sharding, checkpoints, wire, overlap, precision, accumulation, worldSize);
        if (fault == "uneven-balanced")
            options.ClassWeights = ZeroClassWeights.Balanced;
        var replicas = mlContext.Zero().Trainer(options).TrainReplicas(data, out _);
        if (rank == 0)
        {
            WriteWeights(weightsPath, IrisFixtures.Weights(replicas[0]));
            var world = Distributed.Mpi.MpiCommunicator.World(Distributed.Mpi.MpiLaunchEnvironment.Detect()!, timeout);
            Console.WriteLine($"{SharedReductionsLine}{world.SharedMemoryReductions}");
        }
        foreach (var replica in replicas)
            replica.Dispose();
        return 0;
    }

    /// <summary>
    /// Fine-tunes the tiny BERT in <paramref name="checkpoint"/> for sentence similarity on 2 ranks (in-process, or one
    /// process each under mpirun) and returns the trained weights, flattened.
    /// </summary>
    public static float[] SimilarityWeights(string checkpoint)
    {
        var mlContext = new MLContext(seed: 0);
        var data = mlContext.Data.LoadFromEnumerable(SentimentPairs.From(SentimentData.All(), 128, seed: 0));
        using var model = mlContext.Zero().SentenceSimilarity(new ZeroSentenceSimilarityOptions
        {
            CheckpointPath = checkpoint, WorldSize = 2, BatchSize = 16, MaxEpoch = 2, MaxSequenceLength = 32, LearningRate = 1e-3, Seed = 7,
            Progress = ZeroProgress.None, CommunicationTimeout = TimeSpan.FromSeconds(60), DeepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Fp32 },
        }).Fit(data);
        return IrisFixtures.Weights(model.Scorer.Model);
    }

    /// <summary>
    /// Fine-tunes the tiny BERT in <paramref name="checkpoint"/> as a token classifier (tagging Brown sentences, those
    /// longer than 30 tokens in sliding windows) on 2 ranks (in-process, or one process each under mpirun) and returns
    /// the trained weights, flattened.
    /// </summary>
    public static float[] TaggerWeights(string checkpoint)
    {
        var mlContext = new MLContext(seed: 0);
        var data = mlContext.Data.LoadFromEnumerable(BrownCorpus.TaggedSentences(new[] { "ca01" }).Take(96).ToArray());
        var keyed = mlContext.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
        using var model = mlContext.Zero().NamedEntityRecognition(new ZeroNamedEntityRecognitionOptions
        {
            CheckpointPath = checkpoint, WorldSize = 2, BatchSize = 16, MaxEpoch = 2, MaxSequenceLength = 32, LearningRate = 1e-3, Seed = 7,
            LongTextHandling = ZeroLongTextHandling.SlidingWindows, WindowStride = 8,
            Progress = ZeroProgress.None, CommunicationTimeout = TimeSpan.FromSeconds(60), DeepSpeed = new DeepSpeedOptions { Precision = ZeroPrecision.Fp32 },
        }).Fit(keyed);
        return IrisFixtures.Weights(model.Scorer.Model);
    }

    /// <summary>Rank 0's last line: how many all-reduces went through shared memory.</summary>
    public const string SharedReductionsLine = "Shared-memory all-reduces: ";

    private static void WriteWeights(string path, float[] weights)
    {
        string temp = path + ".tmp";
        File.WriteAllBytes(temp, System.Runtime.InteropServices.MemoryMarshal.AsBytes(weights.AsSpan()).ToArray());
        File.Move(temp, path, overwrite: true);
    }

    public static float[] ReadWeights(string path) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(path)).ToArray();
}
