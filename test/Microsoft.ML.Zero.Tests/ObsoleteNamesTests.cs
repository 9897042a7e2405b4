namespace Microsoft.ML.Zero.Tests;

/// <summary>The names renamed for one vocabulary still compile and mean what they meant, for one release.</summary>
[TestClass]
public sealed class ObsoleteNamesTests
{
#pragma warning disable CS0618 // the obsolete names are what is under test
    [TestMethod]
    public void ZeroOptionsReadsADeepSpeedConfigAndTrainsAsDeepSpeedOptions()
    {
        const string Json = """{ "train_micro_batch_size_per_gpu": 8, "gradient_accumulation_steps": 2, "gradient_clipping": 1.0 }""";
        ZeroOptions old = ZeroOptions.FromDeepSpeedConfig(Json);
        var current = DeepSpeedOptions.FromDeepSpeedConfig(Json);

        Assert.AreEqual(current.TrainMicroBatchSizePerGpu, old.TrainMicroBatchSizePerGpu);
        Assert.AreEqual(current.GradientAccumulationSteps, old.GradientAccumulationSteps);
        Assert.AreEqual(current.GradientClipping, old.GradientClipping);

        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Prepared(mlContext);
        float[] Train(DeepSpeedOptions deepSpeed)
        {
            var options = new ZeroTrainerOptions { WorldSize = 2, MaxEpoch = 1, HiddenLayerSizes = new[] { 8 }, DeepSpeed = deepSpeed };
            var replicas = mlContext.Zero().Trainer(options).TrainReplicas(data, out _);
            try
            {
                return IrisFixtures.Weights(replicas[0]);
            }
            finally
            {
                foreach (var replica in replicas)
                    replica.Dispose();
            }
        }
        CollectionAssert.AreEqual(Train(current), Train(old), "the obsolete ZeroOptions trained other weights than DeepSpeedOptions");
    }

    [TestMethod]
    public void TheOldOptionNamesForwardToTheNewFields()
    {
        var options = new ZeroTrainerOptions { MaxEpochs = 7, PredictedLabelColumnName = "Guess" };

        Assert.AreEqual(7, options.MaxEpoch);
        Assert.AreEqual("Guess", options.PredictionColumnName);
        options.MaxEpoch = 3;
        options.PredictionColumnName = "Class";
        Assert.AreEqual(3, options.MaxEpochs);
        Assert.AreEqual("Class", options.PredictedLabelColumnName);
    }
#pragma warning restore CS0618
}
