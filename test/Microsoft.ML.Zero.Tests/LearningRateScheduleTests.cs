namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// Schedules against values worked out by hand from DeepSpeed's formulas (lr_schedules.py), at DeepSpeed's
/// last_batch_iteration i (-1 before the first scheduler step).
/// </summary>
[TestClass]
public sealed class LearningRateScheduleTests
{
    private const double Tolerance = 1e-12;

    [TestMethod]
    public void WarmupLRLogAndLinear()
    {
        var log = new WarmupLR { WarmupMinLR = 0, WarmupMaxLR = 1e-3, WarmupNumSteps = 1000 };
        Assert.AreEqual(0, log.LearningRate(-1, 5), Tolerance);
        Assert.AreEqual(0, log.LearningRate(0, 5), Tolerance);
        Assert.AreEqual(1e-3 * Math.Log(2) / Math.Log(1000), log.LearningRate(1, 5), Tolerance);   // 1.00343e-4
        Assert.AreEqual(1e-3 / 3, log.LearningRate(9, 5), Tolerance);                              // ln 10 / ln 1000
        Assert.AreEqual(1e-3 * 2 / 3, log.LearningRate(99, 5), Tolerance);
        Assert.AreEqual(1e-3, log.LearningRate(999, 5), Tolerance);
        Assert.AreEqual(1e-3, log.LearningRate(5000, 5), Tolerance);

        var linear = new WarmupLR { WarmupMinLR = 1e-4, WarmupMaxLR = 1e-3, WarmupNumSteps = 1000, Type = WarmupType.Linear };
        Assert.AreEqual(1e-4, linear.LearningRate(-1, 5), Tolerance);
        Assert.AreEqual(1e-4 + 9e-4 * 0.5, linear.LearningRate(500, 5), Tolerance);
        Assert.AreEqual(1e-4 + 9e-4 * 0.999, linear.LearningRate(999, 5), Tolerance);
        Assert.AreEqual(1e-3, linear.LearningRate(1000, 5), Tolerance);

        // Without warmup_max_lr the optimizer's rate is the target; a single warm-up step counts as two.
        var short_ = new WarmupLR { WarmupNumSteps = 1 };
        Assert.AreEqual(0, short_.LearningRate(0, 0.02), Tolerance);
        Assert.AreEqual(0.02, short_.LearningRate(1, 0.02), Tolerance);
    }

    [TestMethod]
    public void WarmupDecayLR()
    {
        var schedule = new WarmupDecayLR { WarmupMinLR = 0, WarmupMaxLR = 1e-3, WarmupNumSteps = 1000, TotalNumSteps = 10_000 };
        Assert.AreEqual(0, schedule.LearningRate(-1, 5), Tolerance);
        Assert.AreEqual(1e-3 / 3, schedule.LearningRate(9, 5), Tolerance);
        Assert.AreEqual(1e-3, schedule.LearningRate(999, 5), Tolerance);
        Assert.AreEqual(1e-3, schedule.LearningRate(1000, 5), Tolerance);
        Assert.AreEqual(5e-4, schedule.LearningRate(5500, 5), Tolerance);
        Assert.AreEqual(1e-3 / 9000, schedule.LearningRate(9999, 5), Tolerance);
        Assert.AreEqual(0, schedule.LearningRate(10_000, 5), Tolerance);
        Assert.AreEqual(0, schedule.LearningRate(20_000, 5), Tolerance);

        // "auto" total steps are the run's.
        var auto = (WarmupDecayLR)new WarmupDecayLR { WarmupMaxLR = 1e-3, WarmupNumSteps = 10, Type = WarmupType.Linear }.Resolve(110);
        Assert.AreEqual(110, auto.TotalNumSteps);
        Assert.AreEqual(5e-4, auto.LearningRate(60, 5), Tolerance);
    }

    [TestMethod]
    public void WarmupCosineLR()
    {
        var schedule = new WarmupCosineLR { WarmupNumSteps = 1000, TotalNumSteps = 10_000, CosMinRatio = 1e-4 };
        double lr = 1e-3;
        Assert.AreEqual(0, schedule.LearningRate(-1, lr), Tolerance);
        Assert.AreEqual(lr / 3, schedule.LearningRate(9, lr), Tolerance);
        Assert.AreEqual(lr, schedule.LearningRate(999, lr), Tolerance);
        Assert.AreEqual(lr * (1e-4 + (1 - 1e-4) * (1 + Math.Cos(Math.PI / 9000)) / 2), schedule.LearningRate(1000, lr), Tolerance);
        Assert.AreEqual(lr * (1e-4 + (1 - 1e-4) * 0.5), schedule.LearningRate(5499, lr), Tolerance); // halfway down the cosine
        Assert.AreEqual(lr * 1e-4, schedule.LearningRate(10_998, lr), Tolerance);
        Assert.AreEqual(lr * 1e-4, schedule.LearningRate(50_000, lr), Tolerance);

        var linear = new WarmupCosineLR { WarmupNumSteps = 1000, TotalNumSteps = 10_000, WarmupMinRatio = 0.1, Type = WarmupType.Linear };
        Assert.AreEqual(lr * 0.55, linear.LearningRate(500, lr), Tolerance);
    }

    [TestMethod]
    public void OneCycleRisesFallsAndDecays()
    {
        var schedule = new OneCycle { CycleMinLR = 1e-3, CycleMaxLR = 1e-2, CycleFirstStepSize = 1000 };
        (long Iteration, double Rate, double Momentum)[] expected =
        {
            (-1, 1e-3, 0.8),
            (0, 1e-3 + 9e-3 * 0.001, 0.9 - 0.1 * 0.001),
            (499, 5.5e-3, 0.85),
            (999, 1e-2, 0.8),
            (1000, 1e-3 + 9e-3 * 0.999, 0.8 + 0.1 * 0.001),
            (1499, 5.5e-3, 0.85),
            (1999, 1e-3, 0.9),
            (2000, 1e-3, 0.9),
            (9000, 1e-3, 0.9),
        };
        foreach (var (iteration, rate, momentum) in expected)
        {
            Assert.AreEqual(rate, schedule.LearningRate(iteration, 5), 1e-12, $"lr at {iteration}");
            Assert.AreEqual(momentum, schedule.Momentum(iteration)!.Value, 1e-12, $"momentum at {iteration}");
        }

        var decaying = new OneCycle { CycleMinLR = 1e-3, CycleMaxLR = 1e-2, CycleFirstStepSize = 1000, DecayLRRate = 0.5, DecayStepSize = 100, DecayMomRate = 0.1 };
        Assert.AreEqual(1e-3 / (1 + 0.5 * 1 / 100.0), decaying.LearningRate(2000, 5), 1e-15);
        Assert.AreEqual(1e-3 / 1.5, decaying.LearningRate(2099, 5), 1e-15);
        Assert.AreEqual(0.9 * (1 + 0.1 * 100 / 100.0), decaying.Momentum(2099)!.Value, 1e-12);

        var uneven = new OneCycle { CycleMinLR = 0, CycleMaxLR = 1, CycleFirstStepSize = 3, CycleSecondStepSize = 1, CycleMomentum = false };
        Assert.AreEqual(1.0 / 3, uneven.LearningRate(0, 5), 1e-12);
        Assert.AreEqual(1, uneven.LearningRate(2, 5), 1e-12);
        Assert.AreEqual(0, uneven.LearningRate(3, 5), 1e-12);
        Assert.IsNull(uneven.Momentum(0));
    }
}
