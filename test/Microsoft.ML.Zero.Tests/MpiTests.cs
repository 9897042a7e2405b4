using System.Text.RegularExpressions;
using Microsoft.ML.Zero.Distributed.Mpi;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// Two processes under OpenMPI's mpirun, each one rank, running the test assembly's "mpi-train" mode: the same
/// training as two in-process ranks, and what happens when a rank fails, dies or stalls.
/// </summary>
[TestClass]
public sealed class MpiTests
{
    // Runs the test assembly's "mpi-train" mode in `processes` processes under mpirun. The environment variable is set for
    // mpirun; the processes it starts on this machine inherit it.
    private static ChildProcessResult MpiRun(string weightsPath, string fault = "none", int faultRank = -1,
        (string Name, string Value)? environment = null, int processes = 2)
    {
        string mpirun = new[] { "/usr/bin/mpirun", "/usr/local/bin/mpirun" }.FirstOrDefault(File.Exists)
            ?? throw new AssertFailedException("OpenMPI's mpirun is missing: apt-get install -y openmpi-bin libopenmpi-dev (.ci/run does).");
        return ChildProcess.Run(mpirun,
            ["--allow-run-as-root", "--oversubscribe", "-np", processes.ToString(), ChildProcess.DotnetHost, ChildProcess.TestAssembly,
                "mpi-train", weightsPath, fault, faultRank.ToString()],
            TimeSpan.FromMinutes(3),
            environment: environment is var (name, value) ? [new(name, value)] : null);
    }

    // Runs a test with the path of a file in a fresh temporary folder, deleted afterwards.
    private static void InTempFolder(Action<string> test)
    {
        using var folder = new TempFolder("zero-mpi-");
        test(folder.Combine("weights.bin"));
    }

    [TestMethod]
    [TestCategory("mpi")]
    public void TwoMpiProcessesTrainTheSameModelAsTwoInProcessRanks()
    {
        InTempFolder(weightsPath =>
        {
            MpiRun(weightsPath).AssertSucceeded();
            AssertCloseTo(InProcessWeights(new MLContext(seed: 0), null), MpiJob.ReadWeights(weightsPath));
        });
    }

    [TestMethod]
    [TestCategory("mpi")]
    public void SentenceSimilarityUnderMpiTrainsTheSameModelAsTwoInProcessRanks()
    {
        InTempFolder(weightsPath =>
        {
            string checkpoint = TinyBertFolder.Write(Path.Combine(Path.GetDirectoryName(weightsPath)!, "tiny-bert"), hiddenDropout: 0.1);
            MpiRun(weightsPath, "similarity").AssertSucceeded();
            AssertCloseTo(MpiJob.SimilarityWeights(checkpoint), MpiJob.ReadWeights(weightsPath));
        });
    }

    [TestMethod]
    [TestCategory("mpi")]
    public void NamedEntityRecognitionInSlidingWindowsUnderMpiTrainsTheSameModelAsTwoInProcessRanks()
    {
        InTempFolder(weightsPath =>
        {
            string checkpoint = TinyBertFolder.Write(Path.Combine(Path.GetDirectoryName(weightsPath)!, "tiny-bert"), hiddenDropout: 0.1);
            MpiRun(weightsPath, "ner").AssertSucceeded();
            AssertCloseTo(MpiJob.TaggerWeights(checkpoint), MpiJob.ReadWeights(weightsPath));
        });
    }

    [TestMethod]
    [TestCategory("mpi")]
    public void GradientsSentAsBf16GiveTheInProcessResultThroughSharedMemoryAndOverMpi()
    {
        // communication_data_type bf16: same-host ranks add their bf16 staging buffers in shared memory; with that turned
        // off, MPI adds them with a user-defined operation. Both round each sum to bf16 and give the same bits.
        InTempFolder(weightsPath =>
        {
            var mlContext = new MLContext(seed: 0);
            var expected = InProcessWeights(mlContext, ZeroPrecision.Bf16);
            CollectionAssert.AreNotEqual(InProcessWeights(mlContext, null), expected, "the bf16 wire made no difference");
            var bits = new List<int[]>();
            foreach (bool sharedMemory in new[] { true, false })
            {
                string output = MpiRun(weightsPath, "bf16-wire", environment: sharedMemory ? null : (MpiCommunicator.SharedMemoryVariable, "0")).AssertSucceeded().Output;
                Assert.AreEqual(sharedMemory, SharedReductions(output) > 0, output);
                if (sharedMemory)
                    StringAssert.Contains(output, "Gradients are all-reduced through shared memory: all 2 ranks run on this machine");
                AssertCloseTo(expected, MpiJob.ReadWeights(weightsPath));
                bits.Add(WeightBits(weightsPath));
            }
            CollectionAssert.AreEqual(bits[0], bits[1], "shared memory and MPI's bf16 sums trained different weights");
        });
    }

    [TestMethod]
    [TestCategory("mpi")]
    public void TheEngineApiUnderMpiTrainsTheSameModelAsInProcessRanks()
    {
        InTempFolder(weightsPath =>
        {
            MpiRun(weightsPath, "engine").AssertSucceeded();
            CollectionAssert.AreEqual(IrisCnnEngineTraining.Train(worldSize: 2, microBatch: 8), MpiJob.ReadWeights(weightsPath));
        });
    }

    // The same training within 1e-5 (MPI ranks are separate processes, each with its own libtorch).
    private static void AssertCloseTo(float[] inProcess, float[] mpi)
    {
        Assert.AreEqual(inProcess.Length, mpi.Length);
        double maxDiff = inProcess.Zip(mpi, (a, b) => Math.Abs(a - b)).Max();
        Assert.IsTrue(maxDiff <= 1e-5, $"max |in-process - MPI| = {maxDiff}");
    }

    private static float[] InProcessWeights(MLContext mlContext, ZeroPrecision? wire, ZeroPrecision precision = ZeroPrecision.Fp32, ZeroPrecision? accumulation = null, int worldSize = 2)
    {
        var options = MpiJob.Options(3, TimeSpan.FromMinutes(1), communicationDataType: wire, precision: precision, gradientAccumulationDataType: accumulation, worldSize: worldSize);
        var replicas = mlContext.Zero().Trainer(options).TrainReplicas(IrisFixtures.Prepared(mlContext), out _);
        var weights = IrisFixtures.Weights(replicas[0]);
        foreach (var replica in replicas)
            replica.Dispose();
        return weights;
    }

    [TestMethod]
    [TestCategory("mpi")]
    public void SameHostRanksSumThroughSharedMemoryToTheBitsMpiAllReduceGives()
    {
        InTempFolder(weightsPath =>
        {
            var runs = new List<(string Mode, long SharedReductions, int[] Weights)>();
            foreach (string mode in new[] { "none", "overlap" })
            {
                string output = MpiRun(weightsPath, mode).AssertSucceeded().Output;
                StringAssert.Contains(output, "Gradients are all-reduced through shared memory: all 2 ranks run on this machine");
                Assert.IsEmpty(SharedMemoryFilesLeft(output, required: true), "files left in /dev/shm");
                var shared = (mode, SharedReductions(output), WeightBits(weightsPath));

                string offOutput = MpiRun(weightsPath, mode, environment: (MpiCommunicator.SharedMemoryVariable, "0")).AssertSucceeded().Output;
                StringAssert.Contains(offOutput, "Gradients are all-reduced over MPI, not through shared memory: ZERO_MPI_SHARED_MEMORY=0 on rank(s) 0, 1.");
                Assert.AreEqual(0, SharedReductions(offOutput), offOutput);
                CollectionAssert.AreEqual(WeightBits(weightsPath), shared.Item3, $"{mode}: shared memory and MPI_Allreduce trained different weights");
                runs.Add(shared);
            }
            // Without overlap one all-reduce per step; with it, one per bucket (the iris MLP's gradients make 2).
            Assert.IsGreaterThan(0L, runs[0].SharedReductions);
            Assert.AreEqual(2 * runs[0].SharedReductions, runs[1].SharedReductions);
            CollectionAssert.AreEqual(runs[0].Weights, runs[1].Weights, "buckets summed other values than the whole buffer");
        });
    }

    [TestMethod]
    [TestCategory("mpi")]
    public void Bf16GradientsSumThroughASharedFp32StagingBufferToTheInProcessResult()
    {
        // bf16 training that accumulates in bf16 keeps no fp32 gradient buffer: each bucket is widened into a
        // bucket-sized fp32 buffer, which same-host ranks share, summed there, and rounded back.
        string output = SumsThroughSharedMemoryToTheInProcessBits("bf16-accumulation", InProcessWeights(new MLContext(seed: 0), null, ZeroPrecision.Bf16, ZeroPrecision.Bf16));
        // The iris MLP's 739 gradients and the loss pass through the 200-value staging buffer in 4 rounds a step.
        Assert.AreEqual(0, SharedReductions(output) % 4, output);
    }

    [TestMethod]
    [TestCategory("mpi")]
    public void Bf16ModelGradientsSentAsBf16AreSummedWhereBackwardWroteThem()
    {
        // bf16 training with bf16 on the wire: the model's bf16 gradient buffer itself lies in shared memory, and the
        // ranks sum it there.
        SumsThroughSharedMemoryToTheInProcessBits("bf16-model-wire", InProcessWeights(new MLContext(seed: 0), ZeroPrecision.Bf16, ZeroPrecision.Bf16));
    }

    // Runs the MPI job in mode: its ranks must sum through shared memory, leave no files behind, and train the weights
    // of in-process ranks bit for bit. Returns the job's output.
    private static string SumsThroughSharedMemoryToTheInProcessBits(string mode, float[] inProcess)
    {
        string output = "";
        InTempFolder(weightsPath =>
        {
            output = MpiRun(weightsPath, mode).AssertSucceeded().Output;
            StringAssert.Contains(output, "Gradients are all-reduced through shared memory: all 2 ranks run on this machine");
            Assert.IsEmpty(SharedMemoryFilesLeft(output, required: true), "files left in /dev/shm");
            Assert.IsGreaterThan(0L, SharedReductions(output));
            CollectionAssert.AreEqual(inProcess.Select(BitConverter.SingleToInt32Bits).ToArray(), WeightBits(weightsPath), "MPI and in-process ranks trained different weights");
        });
        return output;
    }

    [TestMethod]
    [TestCategory("mpi")]
    [DataRow(false, 1e-5)]
    [DataRow(true, 2e-3)] // bf16 sums rounded in another order (each machine's pair first): 5e-4 apart here
    public void RanksOnSeveralMachinesSumOnEachThroughSharedMemoryAndBetweenThemOverMpi(bool bf16Wire, double tolerance)
    {
        // 4 processes that name two machines (ZERO_MPI_HOST machine0 for ranks 0-1, machine1 for ranks 2-3): each pair
        // sums through its shared memory, and MPI sums each chunk between the pairs. The result matches 4 in-process
        // ranks (the order of the additions differs) and is the same on every rank (the trainer checks it). With the bf16
        // wire the chunks between machines go through MPI's user-defined 16-bit sum.
        InTempFolder(weightsPath =>
        {
            string output = MpiRun(weightsPath, bf16Wire ? "two-machines-bf16-wire" : "two-machines", processes: 4).AssertSucceeded().Output;
            StringAssert.Contains(output, "Gradients are all-reduced through shared memory on each machine (2 ranks each), and over MPI between the 2 machines");
            Assert.IsEmpty(SharedMemoryFilesLeft(output, required: true), "files left in /dev/shm");
            Assert.IsGreaterThan(0L, SharedReductions(output));
            var expected = InProcessWeights(new MLContext(seed: 0), bf16Wire ? ZeroPrecision.Bf16 : null, worldSize: 4);
            var mpi = MpiJob.ReadWeights(weightsPath);
            double maxDiff = expected.Zip(mpi, (a, b) => Math.Abs(a - b)).Max();
            Assert.IsTrue(maxDiff <= tolerance, $"max |in-process - MPI over two machines| = {maxDiff}");
        });
    }

    private static long SharedReductions(string output) =>
        long.Parse(Regex.Match(output, Regex.Escape(MpiJob.SharedReductionsLine) + "([0-9]+)").Groups[1].Value);

    private static int[] WeightBits(string weightsPath) => MpiJob.ReadWeights(weightsPath).Select(BitConverter.SingleToInt32Bits).ToArray();

    // The job's files in /dev/shm that are still there, from the name rank 0 logged (required: it must have logged one).
    private static string[] SharedMemoryFilesLeft(string output, bool required)
    {
        var match = Regex.Match(output, @"\((/dev/shm/[^ ()*]+)\*, removed once mapped\)");
        Assert.IsTrue(match.Success || !required, $"no shared-memory file name in the output: {output}");
        return match.Success
            ? Directory.GetFiles(Path.GetDirectoryName(match.Groups[1].Value)!, Path.GetFileName(match.Groups[1].Value) + "*")
            : Array.Empty<string>();
    }

    [TestMethod]
    [TestCategory("mpi")]
    public void ARankThatThrowsEndsTheJobWithItsRankAndReason()
    {
        InTempFolder(weightsPath =>
        {
            var run = MpiRun(weightsPath, "fail-rank", 1).AssertFailed();
            StringAssert.Contains(run.Output, "rank 1 of 2 failed:");
            StringAssert.Contains(run.Output, "Features");
            // The collective timeout is 60 s: the job ended because the failing rank aborted it, not by the watchdog.
            Assert.IsTrue(run.Elapsed < TimeSpan.FromSeconds(45), run.Describe());
            Assert.IsFalse(File.Exists(weightsPath), "a failed job wrote a model");
        });
    }

    [TestMethod]
    [TestCategory("mpi")]
    public void AKilledRankEndsTheJobWithinSeconds()
    {
        InTempFolder(weightsPath =>
        {
            var run = MpiRun(weightsPath, "kill-rank", 1).AssertFailed();
            StringAssert.Contains(run.Output, "rank 1");
            Assert.IsTrue(run.Elapsed < TimeSpan.FromSeconds(45), run.Describe());
            // Unlinked once mapped: a killed job leaves nothing in /dev/shm.
            Assert.IsEmpty(SharedMemoryFilesLeft(run.Output, required: false), "files left in /dev/shm");
        });
    }

    [TestMethod]
    [TestCategory("mpi")]
    public void ARankWaitingPastTheTimeoutNamesItselfAndTheCollectiveAndAbortsTheJob()
    {
        InTempFolder(weightsPath =>
        {
            var run = MpiRun(weightsPath, "stall-rank", 1).AssertFailed();
            // The first collective of a step is the ranks' agreement on whether training was cancelled.
            StringAssert.Contains(run.Output, "rank 0 of 2 waited more than 00:00:05 in all-gather");
            Assert.IsTrue(run.Elapsed < TimeSpan.FromSeconds(45), run.Describe());
        });
    }

    [TestMethod]
    [TestCategory("mpi")]
    public void ARankToldToStopWithSigtermStopsTheJobAtOneStepAfterACheckpoint()
    {
        InTempFolder(weightsPath =>
        {
            var run = MpiRun(weightsPath, "sigterm-rank", 1).AssertFailed();
            Assert.IsFalse(File.Exists(weightsPath), "the job told to stop finished training");
            string latest = File.ReadAllText(Path.Combine(MpiJob.CheckpointFolder(weightsPath), "latest"));
            // Both processes stop at the same step, saying so, and the checkpoint written there is the latest.
            var stops = System.Text.RegularExpressions.Regex.Matches(run.Output, @"Training was cancelled before optimizer step (\d+)\. Checkpoint (global_step\d+)");
            Assert.AreEqual(2, stops.Count, run.Describe());
            Assert.AreEqual(stops[0].Groups[1].Value, stops[1].Groups[1].Value, "the processes stopped at different steps");
            Assert.AreEqual(latest, stops[0].Groups[2].Value);
            Assert.IsTrue(run.Elapsed < TimeSpan.FromSeconds(60), run.Describe());
        });
    }

    [TestMethod]
    [TestCategory("mpi")]
    public void RanksWithOneHostNameButSeparateSharedMemoryFallBackToMpiWithinSecondsAndLeaveNoFile()
    {
        InTempFolder(weightsPath =>
        {
            var run = MpiRun(weightsPath, "separate-shm").AssertSucceeded();
            StringAssert.Contains(run.Output, "is not visible");
            StringAssert.Contains(run.Output, "the job all-reduces over MPI instead");
            Assert.IsTrue(run.Elapsed < TimeSpan.FromSeconds(45), run.Describe());
            string folder = Path.GetDirectoryName(weightsPath)!;
            foreach (string shm in new[] { "shm0", "shm1" })
                Assert.IsEmpty(Directory.GetFiles(Path.Combine(folder, shm)), $"{shm} keeps files");
            // The same weights as when shared memory is off.
            var fallback = MpiJob.ReadWeights(weightsPath);
            MpiRun(weightsPath, environment: (MpiCommunicator.SharedMemoryVariable, "0")).AssertSucceeded();
            CollectionAssert.AreEqual(MpiJob.ReadWeights(weightsPath), fallback);
        });
    }

    [TestMethod]
    [TestCategory("mpi")]
    public void RanksWithShardsOfDifferentSizesAgreeOnTheSteps()
    {
        InTempFolder(weightsPath =>
        {
            var run = MpiRun(weightsPath, "uneven").AssertSucceeded();
            StringAssert.Contains(run.Output, "150 training rows over 2 rank(s) (shards of 112, 38 rows): 14 optimizer steps per epoch.");
            Assert.IsTrue(MpiJob.ReadWeights(weightsPath).All(float.IsFinite));
            Assert.IsTrue(run.Elapsed < TimeSpan.FromSeconds(45), run.Describe());

            // Balanced class weights count every rank's rows: 50 of each species in all, so every weight is 1.
            File.Delete(weightsPath);
            StringAssert.Contains(MpiRun(weightsPath, "uneven-balanced").AssertSucceeded().Output, "Balanced class weights: setosa 1, versicolor 1, virginica 1.");

            // Splitting "the same data" that is not the same on every rank is refused on every rank, before any step.
            File.Delete(weightsPath);
            string splitOutput = MpiRun(weightsPath, "uneven-split").AssertFailed().Output;
            StringAssert.Contains(splitOutput, "Rank 1 reads 38 training rows but rank 0 reads 112");
            Assert.IsFalse(File.Exists(weightsPath));
        });
    }

    [TestMethod]
    [TestCategory("mpi")]
    public void AnMpiJobKilledMidRunResumesFromItsCheckpointToTheUninterruptedWeights()
    {
        InTempFolder(weightsPath =>
        {
            MpiRun(weightsPath, "checkpoint-kill", 1).AssertFailed();
            Assert.IsFalse(File.Exists(weightsPath), "the killed job finished training");
            string latest = File.ReadAllText(Path.Combine(MpiJob.CheckpointFolder(weightsPath), "latest"));
            Assert.IsTrue(int.Parse(latest["global_step".Length..]) < MpiJob.LongRunEpochs * 10, $"latest is {latest}: the job was killed after its end");

            string resumedOutput = MpiRun(weightsPath, "checkpoint-resume").AssertSucceeded().Output;
            StringAssert.Contains(resumedOutput, "Resuming from");
            var resumed = MpiJob.ReadWeights(weightsPath);

            MpiRun(weightsPath, "long").AssertSucceeded();
            CollectionAssert.AreEqual(MpiJob.ReadWeights(weightsPath), resumed, "the resumed job ended with other weights than an uninterrupted one");
        });
    }
}
