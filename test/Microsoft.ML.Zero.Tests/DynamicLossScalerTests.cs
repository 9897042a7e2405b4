using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero.Tests;

/// <summary>The loss scale against DeepSpeed's update_scale, step by step.</summary>
[TestClass]
public sealed class DynamicLossScalerTests
{
    [TestMethod]
    public void HysteresisDelaysTheHalvingAndACleanWindowDoublesTheScale()
    {
        var scaler = new DynamicLossScaler(new Fp16Options()); // 2^16, window 1000, hysteresis 2
        Assert.AreEqual(65536, scaler.Scale);
        scaler.Update(overflow: true);   // iteration 0: hysteresis 2 -> 1, scale kept
        Assert.AreEqual(65536, scaler.Scale);
        scaler.Update(overflow: true);   // iteration 1: halves
        Assert.AreEqual(32768, scaler.Scale);
        scaler.Update(overflow: true);   // iteration 2: hysteresis is still 1 (only a growth refills it): halves again
        Assert.AreEqual(16384, scaler.Scale);
        for (int iteration = 3; iteration < 1003; iteration++)
        {
            scaler.Update(overflow: false);
            Assert.AreEqual(16384, scaler.Scale, $"iteration {iteration}");
        }
        scaler.Update(overflow: false);  // iteration 1003: 1000 clean steps since the overflow at 2
        Assert.AreEqual(32768, scaler.Scale);
        scaler.Update(overflow: true);   // the growth refilled the hysteresis: this overflow is absorbed
        Assert.AreEqual(32768, scaler.Scale);
        scaler.Update(overflow: true);
        Assert.AreEqual(16384, scaler.Scale);
    }

    [TestMethod]
    public void ConsecutiveHysteresisRefillsAfterEveryCleanStep()
    {
        var consecutive = new DynamicLossScaler(new Fp16Options { ConsecutiveHysteresis = true });
        var plain = new DynamicLossScaler(new Fp16Options());
        foreach (bool overflow in new[] { true, false, true, false, true })
        {
            consecutive.Update(overflow);
            plain.Update(overflow);
        }
        Assert.AreEqual(65536, consecutive.Scale, "each overflow only used up the refilled hysteresis");
        Assert.AreEqual(16384, plain.Scale, "the second and third overflows halved the scale");
    }

    [TestMethod]
    public void AStaticScaleNeverMoves()
    {
        var scaler = new DynamicLossScaler(new Fp16Options { LossScale = 128, LossScaleWindow = 1 });
        for (int i = 0; i < 5; i++)
            scaler.Update(overflow: i % 2 == 0);
        Assert.AreEqual(128, scaler.Scale);
    }

    [TestMethod]
    public void AnOverflowAtTheMinimumScaleStopsTraining()
    {
        var scaler = new DynamicLossScaler(new Fp16Options { InitialScalePower = 2, Hysteresis = 1, MinLossScale = 1 });
        scaler.Update(overflow: true);
        scaler.Update(overflow: true);
        Assert.AreEqual(1, scaler.Scale);
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => scaler.Update(overflow: true));
        StringAssert.Contains(error.Message, "fp16.min_loss_scale");
    }
}
