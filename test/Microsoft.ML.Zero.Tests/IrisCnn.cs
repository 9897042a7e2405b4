using Microsoft.ML.Zero.Data;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>A small 1-D CNN over the four iris measurements: a user-defined module, not one of the library's.</summary>
public sealed class IrisCnn : nn.Module<Tensor, Tensor>
{
    private readonly Conv1d conv;
    private readonly Linear head;

    public IrisCnn(int featureCount, int classCount) : base(nameof(IrisCnn))
    {
        conv = nn.Conv1d(1, 8, kernel_size: 2);
        head = nn.Linear(8 * (featureCount - 1), classCount);
        RegisterComponents();
    }

    // [rows, 1, features] -> [rows, classes]
    public override Tensor forward(Tensor input) => head.call(nn.functional.relu(conv.call(input)).flatten(1));
}

/// <summary>Builds <see cref="IrisCnn"/> for ZeroTrainer: the feature vector becomes one input channel.</summary>
public sealed class IrisCnnFactory : ZeroModelFactory
{
    public override nn.Module<Tensor, Tensor> CreateModel(int featureCount, int classCount) => new IrisCnn(featureCount, classCount);

    public override Tensor BuildInput(Tensor features) => features.unsqueeze(1);
}

/// <summary>The same training as ZeroTrainer with <see cref="IrisCnnFactory"/>, written as a DeepSpeed-style loop over <see cref="ZeroEngine"/>.</summary>
public static class IrisCnnEngineTraining
{
    public const int Rows = 144, Seed = 5, Epochs = 3;
    public const double LearningRate = 0.01;

    /// <summary>The first 144 iris rows (whole batches of 16) with labels in order of first appearance, as MapValueToKey numbers them.</summary>
    public static (float[][] Features, long[] Labels) Data()
    {
        var rows = Datasets.Iris().Take(Rows).ToArray();
        var species = rows.Select(r => r.Label).Distinct().ToList();
        return (rows.Select(r => r.Features).ToArray(), rows.Select(r => (long)species.IndexOf(r.Label)).ToArray());
    }

    /// <summary>The weights <see cref="Train"/> starts from.</summary>
    public static float[] Initial()
    {
        manual_seed(Seed);
        using var model = new IrisCnnFactory().CreateModel(4, 3);
        return IrisFixtures.Weights(model);
    }

    /// <summary>
    /// Trains on <paramref name="worldSize"/> ranks (in-process, or this process's rank under mpirun) with
    /// <paramref name="microBatch"/> rows per rank, each rank taking its rows of the same seeded order; returns rank 0's weights.
    /// </summary>
    public static float[] Train(int worldSize, int microBatch)
    {
        var (features, labels) = Data();
        float[] weights = Array.Empty<float>();
        var factory = new IrisCnnFactory();
        ZeroEngine.Launch(worldSize, rank =>
        {
            using var model = rank.CreateModel(Seed, () => factory.CreateModel(4, 3));
            var options = new DeepSpeedOptions { TrainMicroBatchSizePerGpu = microBatch };
            options.Optimizer.LearningRate = LearningRate;
            using var engine = ZeroEngine.Initialize(model, options);
            var plan = new ShardPlan(Rows, rank.WorldSize, rank.Rank, microBatch, Seed);
            for (int epoch = 0; epoch < Epochs; epoch++)
            {
                var order = plan.RowsForEpoch(epoch);
                for (int step = 0; step < plan.StepsPerEpoch; step++)
                {
                    using var scope = NewDisposeScope();
                    var (start, count) = plan.MicroBatch(step, order.Length);
                    var rows = order.AsSpan(start, count).ToArray();
                    var x = tensor(rows.SelectMany(r => features[r]).ToArray(), new long[] { count, 4 });
                    var y = tensor(rows.Select(r => labels[r]).ToArray());
                    var loss = factory.LossSum(engine.Forward(factory.BuildInput(x)), y) / count;   // the micro-batch's mean loss
                    engine.Backward(loss);
                    engine.Step();
                }
            }
            if (rank.Rank == 0)
                weights = IrisFixtures.Weights(model);
        });
        return weights;
    }
}
