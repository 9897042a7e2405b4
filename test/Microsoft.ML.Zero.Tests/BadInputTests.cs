using Microsoft.ML.Data;

namespace Microsoft.ML.Zero.Tests;

[TestClass]
public sealed class BadInputTests
{
    private sealed class TextFeatures
    {
        public string Features { get; set; } = "";

        public string Label { get; set; } = "";
    }

    private sealed class ScalarFeature
    {
        public float Features { get; set; }

        public string Label { get; set; } = "";
    }

    private static readonly MLContext MlContext = new(seed: 0);

    private static IEstimator<ITransformer> Pipeline(ZeroTrainerOptions? options = null) =>
        MlContext.Transforms.Conversion.MapValueToKey("Label").Append(MlContext.Zero().Trainer(options ?? new ZeroTrainerOptions { MaxEpoch = 1 }));

    private static IDataView Iris(Action<IrisRow[]>? change = null)
    {
        var rows = Datasets.Iris();
        change?.Invoke(rows);
        return MlContext.Data.LoadFromEnumerable(rows);
    }

    private static void AssertMessage(Exception exception, params string[] parts)
    {
        foreach (string part in parts)
            StringAssert.Contains(exception.Message, part);
    }

    [TestMethod]
    public void MissingFeatureColumnIsNamed()
    {
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            Pipeline(new ZeroTrainerOptions { FeatureColumnName = "Measurements" }).Fit(Iris()));
        AssertMessage(error, "'Measurements'", "feature column");
    }

    [TestMethod]
    public void MissingLabelColumnIsNamed()
    {
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            MlContext.Zero().Trainer(new ZeroTrainerOptions { LabelColumnName = "Species" }).Fit(Iris()));
        AssertMessage(error, "'Species'", "label column", "'Features'", "'Label'");
    }

    [TestMethod]
    public void LabelThatIsNotAKeyAsksForMapValueToKey()
    {
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => MlContext.Zero().Trainer(new ZeroTrainerOptions()).Fit(Iris()));
        AssertMessage(error, "'Label'", "key type", "MapValueToKey");
        // In a pipeline, the schema check (GetOutputSchema) says the same before any training starts.
        var schemaError = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            MlContext.Transforms.CopyColumns("Copy", "Label").Append(MlContext.Zero().Trainer(new ZeroTrainerOptions())).Fit(Iris()));
        AssertMessage(schemaError, "'Label'", "key type");
        StringAssert.Contains(schemaError.StackTrace, nameof(ZeroTrainer.GetOutputSchema));
    }

    [TestMethod]
    public void TextFeaturesAreRejectedWithTheExpectedType()
    {
        var data = MlContext.Data.LoadFromEnumerable(new[] { new TextFeatures { Features = "a", Label = "x" }, new TextFeatures { Features = "b", Label = "y" } });
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Pipeline().Fit(data));
        AssertMessage(error, "'Features'", "known-size vector of Single");
    }

    [TestMethod]
    public void ScalarFeatureIsRejectedWithTheExpectedType()
    {
        var data = MlContext.Data.LoadFromEnumerable(new[] { new ScalarFeature { Features = 1, Label = "x" }, new ScalarFeature { Features = 2, Label = "y" } });
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Pipeline().Fit(data));
        AssertMessage(error, "'Features'", "Single", "Concatenate");
    }

    [TestMethod]
    public void EmptyDataIsRejected()
    {
        var keyed = MlContext.Transforms.Conversion.MapValueToKey("Label").Fit(Iris()).Transform(Iris());
        var empty = MlContext.Data.SkipRows(keyed, 1000);
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => MlContext.Zero().Trainer(new ZeroTrainerOptions()).Fit(empty));
        AssertMessage(error, "no rows");
    }

    [TestMethod]
    public void NaNFeatureIsReportedWithItsRow()
    {
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => Pipeline().Fit(Iris(rows => rows[17].Features[2] = float.NaN)));
        AssertMessage(error, "'Features'", "NaN", "row 17", "slot 2", "finite");
    }

    [TestMethod]
    public void InfiniteFeatureIsReportedWithItsRow()
    {
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => Pipeline().Fit(Iris(rows => rows[42].Features[0] = float.PositiveInfinity)));
        AssertMessage(error, "'Features'", "row 42", "finite");
    }

    [TestMethod]
    public void MissingLabelIsReportedWithItsRow()
    {
        var data = Iris();
        // Rows 0-99 hold two species: the third species (rows 100-149) has no key in this mapping, so its label is missing.
        var keyed = MlContext.Transforms.Conversion.MapValueToKey("Label").Fit(MlContext.Data.TakeRows(data, 100)).Transform(data);
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => MlContext.Zero().Trainer(new ZeroTrainerOptions()).Fit(keyed));
        AssertMessage(error, "'Label'", "missing value", "row 100");
    }

    [TestMethod]
    [DataRow(0)]
    [DataRow(-2)]
    public void WorldSizeBelowOneIsRejected(int worldSize)
    {
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => MlContext.Zero().Trainer(new ZeroTrainerOptions { WorldSize = worldSize }));
        AssertMessage(error, "WorldSize", $"{worldSize}", "at least 1");
    }

    [TestMethod]
    public void BatchSizeBelowOneIsRejected()
    {
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => MlContext.Zero().Trainer(new ZeroTrainerOptions { BatchSize = 0 }));
        AssertMessage(error, "BatchSize", "at least 1");
    }

    [TestMethod]
    public void OptionsChangedAfterCreationAreCheckedAtFit()
    {
        var options = new ZeroTrainerOptions();
        var trainer = Pipeline(options);
        options.LearningRate = -1;
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => trainer.Fit(Iris()));
        AssertMessage(error, "LearningRate", "-1");
    }

    [TestMethod]
    public void ScoringDataWithAnotherFeatureSizeIsRejected()
    {
        var model = Pipeline(new ZeroTrainerOptions { MaxEpoch = 1 }).Fit(Iris());
        var wider = MlContext.Transforms.Concatenate("Features", "Features", "Features").Fit(Iris()).Transform(Iris());
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.Transform(wider));
        AssertMessage(error, "'Features'", "Vector<Single, 4>");
    }
}
