using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>overlap_comm with parameters that get gradients from more than one place in backward.</summary>
[TestClass]
public sealed class OverlapSharedParameterTests
{
    /// <summary>One Linear called twice in forward.</summary>
    private sealed class ReusedLayer : nn.Module<Tensor, Tensor>
    {
        private readonly Linear square = nn.Linear(6, 6);
        private readonly Linear head = nn.Linear(6, 3);

        public ReusedLayer() : base(nameof(ReusedLayer)) => RegisterComponents();

        public override Tensor forward(Tensor input) => head.call(square.call(nn.functional.relu(square.call(input))));
    }

    /// <summary>Two layers that share one weight (tied, as an embedding and an output layer often are).</summary>
    private sealed class TiedWeights : nn.Module<Tensor, Tensor>
    {
        private readonly Linear first = nn.Linear(6, 6);
        private readonly Linear second = nn.Linear(6, 6);
        private readonly Linear head = nn.Linear(6, 3);

        public TiedWeights() : base(nameof(TiedWeights))
        {
            second.weight = first.weight;
            RegisterComponents();
        }

        public override Tensor forward(Tensor input) => head.call(second.call(nn.functional.relu(first.call(input))));
    }

    /// <summary>A layer whose 6 x 40 weight is larger than the bucket: its parameters span buckets.</summary>
    private sealed class WideLayer : nn.Module<Tensor, Tensor>
    {
        private readonly Linear wide = nn.Linear(6, 40);
        private readonly Linear head = nn.Linear(40, 3);

        public WideLayer() : base(nameof(WideLayer)) => RegisterComponents();

        public override Tensor forward(Tensor input) => head.call(nn.functional.relu(wide.call(input)));
    }

    private static (float[][] Weights, int LaunchedDuringBackward) Train(Func<nn.Module<Tensor, Tensor>> create, bool overlap)
    {
        // 16-value buckets: every layer's gradients leave in several buckets.
        var options = new DeepSpeedOptions { ZeroOptimization = { OverlapCommunication = overlap, ReduceBucketSize = 16 } };
        var weights = new float[2][];
        int launched = 0;
        ZeroEngine.Launch(2, rank =>
        {
            using var model = rank.CreateModel(4, create);
            using var engine = ZeroEngine.Initialize(model, options);
            for (int step = 0; step < 5; step++)
            {
                using var scope = NewDisposeScope();
                var input = arange(8 * 6, dtype: ScalarType.Float32).reshape(8, 6) / 48 * (rank.Rank + step + 1);
                engine.Backward(engine.Forward(input).square().mean());
                engine.Step();
            }
            weights[rank.Rank] = IrisFixtures.Weights(model);
            if (rank.Rank == 0)
                launched = engine.Core.BucketsReducedDuringBackward;
        }, TimeSpan.FromSeconds(30));
        return (weights, launched);
    }

    [TestMethod]
    [DataRow("reused layer")]
    [DataRow("tied weights")]
    [DataRow("layer across buckets")]
    public void OverlappedBucketsGiveTheBitsOfOneAllReduceAfterBackward(string kind)
    {
        Func<nn.Module<Tensor, Tensor>> create = kind switch
        {
            "reused layer" => () => new ReusedLayer(),
            "tied weights" => () => new TiedWeights(),
            _ => () => new WideLayer(),
        };
        var (plain, _) = Train(create, overlap: false);
        var (overlapped, launched) = Train(create, overlap: true);
        CollectionAssert.AreEqual(overlapped[0], overlapped[1], "the ranks' replicas differ");
        CollectionAssert.AreEqual(plain[0], overlapped[0], $"{kind}: overlap_comm changed the weights");
        // In each model only the head's bucket may leave during backward: the other layers' parameters also get a
        // gradient from a call whose input needs none (the data), which never signals, so their buckets wait for
        // backward to end. A bucket that left at a reused layer's first signal would miss the other call's gradient
        // whenever backward is slower than the all-reduce.
        Assert.AreEqual(5, launched, $"{kind}: buckets that left during backward in 5 steps");
    }
}
