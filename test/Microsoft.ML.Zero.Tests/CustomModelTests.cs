using Microsoft.ML.Data;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>A user-defined TorchSharp module trained by ZeroTrainer (ZeroModelFactory) and by the ZeroEngine API.</summary>
[TestClass]
public sealed class CustomModelTests
{
    private static ZeroTrainerOptions Options(ZeroModelFactory factory) => new()
    {
        WorldSize = 2, BatchSize = 8, MaxEpoch = IrisCnnEngineTraining.Epochs, Seed = IrisCnnEngineTraining.Seed,
        LearningRate = IrisCnnEngineTraining.LearningRate, ModelFactory = factory, Progress = ZeroProgress.None,
    };

    private static IDataView Rows(MLContext mlContext, int count) =>
        mlContext.Transforms.Conversion.MapValueToKey("Label").Fit(mlContext.Data.LoadFromEnumerable(Datasets.Iris().Take(count)))
            .Transform(mlContext.Data.LoadFromEnumerable(Datasets.Iris().Take(count)));

    [TestMethod]
    public void ACustomModuleTrainsToTheSameWeightsThroughFitAndThroughTheEngineApi()
    {
        var mlContext = new MLContext(seed: 0);
        var replicas = mlContext.Zero().Trainer(Options(new IrisCnnFactory())).TrainReplicas(Rows(mlContext, IrisCnnEngineTraining.Rows), out _);
        float[] fit = IrisFixtures.Weights(replicas[0]);
        foreach (var replica in replicas)
            replica.Dispose();
        Assert.IsInstanceOfType<IrisCnn>(replicas[0]);

        float[] engine = IrisCnnEngineTraining.Train(worldSize: 2, microBatch: 8);
        CollectionAssert.AreEqual(fit, engine, "the engine loop and Fit trained different weights");
    }

    [TestMethod]
    public void ACustomModelScoresSavesAndLoadsInAFreshProcess()
    {
        var mlContext = new MLContext(seed: 0);
        var data = IrisFixtures.Load(mlContext);
        var options = Options(new IrisCnnFactory());
        options.MaxEpoch = 40;
        var model = mlContext.Transforms.Conversion.MapValueToKey("Label")
            .Append(mlContext.Zero().Trainer(options))
            .Append(mlContext.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(data);
        var metrics = mlContext.MulticlassClassification.Evaluate(model.Transform(data));
        Assert.IsTrue(metrics.MicroAccuracy > 0.85, $"training accuracy {metrics.MicroAccuracy}");

        using var directory = new TempFolder("zero-custom-");
        string modelPath = directory.Combine("model.zip"), scoresPath = directory.Combine("scores.tsv");
        mlContext.Model.Save(model, data.Schema, modelPath);
        var expected = Program.ScoreLines(model.Transform(data)).ToArray();
        ChildProcess.RunTestAssembly(TimeSpan.FromMinutes(2), "score", modelPath, IrisFixtures.DataPath, scoresPath).AssertSucceeded();
        CollectionAssert.AreEqual(expected, File.ReadAllLines(scoresPath));
    }

    [TestMethod]
    public void BadModelFactoriesAreNamed()
    {
        var mlContext = new MLContext(seed: 0);
        var data = Rows(mlContext, 150);

        var noConstructor = Assert.ThrowsExactly<ArgumentException>(() => mlContext.Zero().Trainer(Options(new FactoryWithoutDefaultConstructor(4))).Fit(data));
        StringAssert.Contains(noConstructor.Message, "FactoryWithoutDefaultConstructor, which has no public parameterless constructor");

        var options = Options(new IrisCnnFactory());
        options.HiddenLayerSizes = new[] { 32 };
        var mlpOption = Assert.ThrowsExactly<ArgumentException>(() => mlContext.Zero().Trainer(options).Fit(data));
        StringAssert.Contains(mlpOption.Message, "ZeroTrainerOptions.HiddenLayerSizes shape the built-in MLP, but ModelFactory (IrisCnnFactory) builds the model");

        var stateful = new WidthFactory { Width = 16 };
        var lost = Assert.ThrowsExactly<ArgumentException>(() => mlContext.Zero().Trainer(Options(stateful)).Fit(data));
        StringAssert.Contains(lost.Message, "ZeroTrainerOptions.ModelFactory (WidthFactory) builds a different module when made again");

        var badScores = Options(new WrongScoresFactory());
        badScores.MaxEpoch = 1;
        var scorer = mlContext.Zero().Trainer(badScores).Fit(data);
        var scored = scorer.Transform(data);
        var scores = Assert.ThrowsExactly<InvalidOperationException>(() => scored.GetColumn<VBuffer<float>>(scored.Schema["Score"]).ToList());
        StringAssert.Contains(scores.Message, "WrongScoresFactory.Scores returned Float32 [");
        StringAssert.Contains(scores.Message, "expected Float32 [");

        var missing = Assert.ThrowsExactly<InvalidOperationException>(() => ZeroModelFactory.Create("Contoso.Models.TextCnnFactory, Contoso.Models"));
        StringAssert.Contains(missing.Message, "'Contoso.Models.TextCnnFactory, Contoso.Models', which cannot be found");
        StringAssert.Contains(missing.Message, "Reference the assembly that defines it ('Contoso.Models')");

        var notAFactory = Assert.ThrowsExactly<InvalidOperationException>(() => ZeroModelFactory.Create(ZeroModelFactory.TypeName(typeof(IrisCnn))));
        StringAssert.Contains(notAFactory.Message, "is not a ZeroModelFactory");
    }

    public sealed class WidthFactory : ZeroModelFactory
    {
        public int Width { get; set; } = 4;

        public override nn.Module<Tensor, Tensor> CreateModel(int featureCount, int classCount) =>
            nn.Sequential(nn.Linear(featureCount, Width), nn.Linear(Width, classCount));
    }

    public sealed class WrongScoresFactory : ZeroModelFactory
    {
        public override nn.Module<Tensor, Tensor> CreateModel(int featureCount, int classCount) => nn.Linear(featureCount, classCount);

        // One column short of the class count.
        public override Tensor Scores(Tensor output) => base.Scores(output).narrow(1, 0, 2);
    }

    private sealed class FactoryWithoutDefaultConstructor(int width) : ZeroModelFactory
    {
        public override nn.Module<Tensor, Tensor> CreateModel(int featureCount, int classCount) => nn.Linear(featureCount * width / width, classCount);
    }
}
