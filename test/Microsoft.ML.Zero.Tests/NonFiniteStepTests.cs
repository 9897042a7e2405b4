using static TorchSharp.torch;
using Microsoft.ML.Zero.Distributed;

namespace Microsoft.ML.Zero.Tests;

/// <summary>A NaN or infinite loss or gradient norm stops training with an error, rather than training NaN weights.</summary>
[TestClass]
public sealed class NonFiniteStepTests
{
    // Six steps of a small regression on two ranks; badStep's loss (on one rank) comes from badLoss. Returns rank 0's
    // skipped steps and weights.
    private static (long Skipped, float[] Weights) Train(DeepSpeedOptions options, int badStep, Func<Tensor, Tensor> badLoss)
    {
        (long, float[]) result = default;
        ZeroEngine.Launch(2, rank =>
        {
            using var model = rank.CreateModel(5, () => nn.Linear(4, 2));
            using var engine = ZeroEngine.Initialize(model, options);
            for (int step = 1; step <= 6; step++)
            {
                using var scope = NewDisposeScope();
                var output = engine.Forward(arange(12, dtype: ScalarType.Float32).reshape(3, 4) / 12);
                var loss = step == badStep && rank.Rank == 1 ? badLoss(output) : output.square().mean();
                engine.Backward(loss);
                engine.Step();
            }
            if (rank.Rank == 0)
                result = (engine.SkippedSteps, IrisFixtures.Weights(model));
        }, TimeSpan.FromSeconds(30));
        return result;
    }

    [TestMethod]
    public void WithSkipNonFiniteStepsANaNStepIsSkippedAndTrainingGoesOn()
    {
        var (skipped, weights) = Train(new DeepSpeedOptions { SkipNonFiniteSteps = true }, badStep: 3, output => output.sum() * float.NaN);
        Assert.AreEqual(1, skipped);
        Assert.IsTrue(weights.All(float.IsFinite), "a skipped NaN step reached the weights");
    }

    [TestMethod]
    [DataRow(ZeroPrecision.Fp32)]
    [DataRow(ZeroPrecision.Bf16)]
    public void ANaNLossStopsTrainingNamingTheStepTheRankAndTheLastFiniteLoss(ZeroPrecision precision)
    {
        var failure = Assert.ThrowsExactly<ZeroRankFailedException>(() =>
            Train(new DeepSpeedOptions { Precision = precision }, badStep: 3, output => output.sum() * float.NaN));
        StringAssert.Contains(failure.Message, "Optimizer step 3");
        StringAssert.Contains(failure.Message, "the loss is NaN");
        StringAssert.Contains(failure.Message, "rank(s) 1");
        StringAssert.Contains(failure.Message, "last finite loss");
    }

    [TestMethod]
    public void ANaNGradientUnderClippingStopsTrainingInsteadOfSkippingTheClip()
    {
        // sqrt at 0 is finite, its gradient infinite; times 0 it is NaN: a finite loss with NaN gradients.
        var failure = Assert.ThrowsExactly<ZeroRankFailedException>(() =>
            Train(new DeepSpeedOptions { GradientClipping = 1.0 }, badStep: 4, output => (output * 0).sqrt().sum() + output.square().mean()));
        StringAssert.Contains(failure.Message, "Optimizer step 4");
        StringAssert.Contains(failure.Message, "gradient norm is NaN");
    }
}
