using Microsoft.ML.Zero.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>An fp16 overflow at the minimum loss scale ends training with an error that says what overflowed.</summary>
[TestClass]
public sealed class LossScaleFloorTests
{
    private static DynamicLossScaler AtTheFloor() => new(new Fp16Options { InitialScalePower = 0, MinLossScale = 1, Hysteresis = 1 });

    [TestMethod]
    public void AGradientThatOutgrewFp16IsNamedWhenTheLossWasFinite()
    {
        TorchRuntimeForTests.Load();
        using var gradients = tensor(new[] { 1f, float.PositiveInfinity, 2f });
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => AtTheFloor().SkipsOverflow(gradients, meanLoss: 0.25f));
        StringAssert.Contains(error.Message, "at its minimum (1, fp16.min_loss_scale)");
        StringAssert.Contains(error.Message, "the loss was finite (0.25) but the summed gradients hold an infinity");
    }

    [TestMethod]
    public void ALossThatIsItselfNotFiniteIsNamed()
    {
        TorchRuntimeForTests.Load();
        using var gradients = tensor(new[] { float.NaN, 1f });
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => AtTheFloor().SkipsOverflow(gradients, meanLoss: float.NaN));
        StringAssert.Contains(error.Message, "the loss itself is NaN");
    }

    [TestMethod]
    public void AboveTheFloorAnOverflowSkipsTheStepAndHalvesTheScale()
    {
        TorchRuntimeForTests.Load();
        var scaler = new DynamicLossScaler(new Fp16Options { InitialScalePower = 4, Hysteresis = 1 });
        using var gradients = tensor(new[] { float.NaN });
        Assert.IsTrue(scaler.SkipsOverflow(gradients, meanLoss: 1));
        Assert.AreEqual(8, scaler.Scale);
    }
}
