using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>MLContext.CancelExecution stops Fit on every rank within one step, and a run cancelled with checkpoints on resumes.</summary>
[TestClass]
public sealed class CancellationTests
{
    /// <summary>An MLP that cancels its context once it has computed a given number of losses (over all ranks).</summary>
    public sealed class CancellingMlp : ZeroModelFactory
    {
        public static MLContext? Context;
        public static int CancelAfterLosses = int.MaxValue;
        private static int _losses;

        public static void Reset(MLContext? context, int cancelAfter)
        {
            (Context, CancelAfterLosses, _losses) = (context, cancelAfter, 0);
        }

        public override nn.Module<Tensor, Tensor> CreateModel(int featureCount, int classCount) =>
            nn.Sequential(nn.Linear(featureCount, 16), nn.ReLU(), nn.Linear(16, classCount));

        public override Tensor LossSum(Tensor output, Tensor labels)
        {
            if (Interlocked.Increment(ref _losses) == CancelAfterLosses)
                Context?.Zero().CancelExecution();
            return base.LossSum(output, labels);
        }
    }

    // 150 iris rows, 2 ranks x 8: 10 steps per epoch, 30 in all.
    private static ZeroTrainerOptions Options(string? checkpoints) => new()
    {
        WorldSize = 2, BatchSize = 8, MaxEpoch = 3, Seed = 11, LearningRate = 0.01, ModelFactory = new CancellingMlp(),
        CheckpointDirectory = checkpoints, CheckpointEverySteps = checkpoints is null ? 0 : 4,
    };

    private static float[] Train(MLContext mlContext, ZeroTrainerOptions options)
    {
        var replicas = mlContext.Zero().Trainer(options).TrainReplicas(IrisFixtures.Prepared(mlContext), out _);
        var weights = IrisFixtures.Weights(replicas[0]);
        foreach (var replica in replicas)
            replica.Dispose();
        return weights;
    }

    [TestMethod]
    public void ACancelledFitThrowsOperationCanceledAndResumesToTheUninterruptedWeights()
    {
        CancellingMlp.Reset(null, int.MaxValue);
        float[] uninterrupted = Train(new MLContext(seed: 0), Options(null));

        using var directory = new TempFolder("zero-cancel-");
        var cancelled = new MLContext(seed: 0);
        // Two losses a step (one per rank): the 27th is in step 14, the 4th step of epoch 2.
        CancellingMlp.Reset(cancelled, 27);
        var stop = Assert.ThrowsExactly<OperationCanceledException>(() => Train(cancelled, Options(directory.Path)));
        StringAssert.Contains(stop.Message, "cancelled");
        StringAssert.Contains(stop.Message, "global_step14");
        Assert.AreEqual("global_step14", File.ReadAllText(directory.Combine("latest")), "the last checkpoint is written where the run stopped");

        CancellingMlp.Reset(null, int.MaxValue);
        float[] resumed = Train(new MLContext(seed: 0), Options(directory.Path));
        CollectionAssert.AreEqual(uninterrupted, resumed, "the resumed run ended with other weights than the uninterrupted one");
    }
}
