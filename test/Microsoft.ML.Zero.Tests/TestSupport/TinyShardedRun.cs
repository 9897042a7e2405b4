using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.Models;
using Microsoft.ML.Zero.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// Two in-process ranks training a tiny MLP on 40 synthetic rows through <see cref="ShardedTraining"/>, each rank with
/// the loop its test builds: the stand-in for processes that run different settings.
/// </summary>
internal static class TinyShardedRun
{
    public static readonly MlpShape Shape = new(4, new[] { 8 }, 3, MlpActivation.Relu, 0);

    public const int Rows = 40;

    public static EngineSettings Settings => EngineSettings.Fp32(new OptimizerSettings(ZeroOptimizer.AdamW, 1e-3, 0.9, 0.999, 1e-8, 0, 0));

    public static void Run(Func<ICommunicator, ShardedTraining> createTraining, TimeSpan timeout)
    {
        TorchRuntimeForTests.Load();
        manual_seed(1);
        var replicas = Enumerable.Range(0, 2).Select(rank => new MlpClassifier(Shape, new Generator((ulong)rank))).ToArray();
        try
        {
            InProcessLauncher.Run(2, timeout, communicator =>
            {
                var model = replicas[communicator.Rank];
                createTraining(communicator).Run(model, communicator, rows => new TabularEpochShard(model, new MlpModelFactory(Shape),
                    rows.SelectMany(r => new[] { r / 40f, r % 7 / 7f, r % 3, 1f }).ToArray(), rows.Select(r => (long)(r % 3)).ToArray(), Shape.InputSize));
                return true;
            });
        }
        finally
        {
            foreach (var replica in replicas)
                replica.Dispose();
        }
    }
}
