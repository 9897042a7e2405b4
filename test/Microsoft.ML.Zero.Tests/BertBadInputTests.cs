namespace Microsoft.ML.Zero.Tests;

[TestClass]
public sealed class BertBadInputTests
{
    private static readonly MLContext MlContext = new(seed: 0);

    private static IDataView Sentences(params (string Text, string Label)[] rows) =>
        MlContext.Transforms.Conversion.MapValueToKey("Label").Fit(MlContext.Data.LoadFromEnumerable(SentimentData.All().Take(20)))
            .Transform(MlContext.Data.LoadFromEnumerable(rows.Select(r => new SentimentRow { Text = r.Text, Label = r.Label })));

    private static Exception Fit(IDataView data, Action<ZeroTextClassificationOptions>? change = null, string? checkpoint = null)
    {
        var options = new ZeroTextClassificationOptions { CheckpointPath = checkpoint ?? MiniLm.Directory(), Sentence1ColumnName = "Text", MaxEpoch = 1 };
        change?.Invoke(options);
        return Assert.Throws<Exception>(() => MlContext.Zero().TextClassification(options).Fit(data));
    }

    // A copy of the converted MiniLM folder with one file replaced (content) or removed (null), for checkpoint errors.
    private static TempFolder CheckpointWith(string file, string? content)
    {
        var folder = new TempFolder("zero-checkpoint-");
        foreach (string source in Directory.GetFiles(MiniLm.Directory()))
            File.Copy(source, folder.Combine(Path.GetFileName(source)));
        if (content is null)
            File.Delete(folder.Combine(file));
        else
            File.WriteAllText(folder.Combine(file), content);
        return folder;
    }

    [TestMethod]
    public void MissingTextColumnIsNamed()
    {
        var error = Fit(Sentences(("good", "1")), o => o.Sentence1ColumnName = "Review");
        Assert.IsInstanceOfType<ArgumentOutOfRangeException>(error);
        StringAssert.Contains(error.Message, "'Review'");
        StringAssert.Contains(error.Message, "Sentence1ColumnName");
    }

    [TestMethod]
    public void MissingLabelIsReportedWithItsRow()
    {
        var error = Fit(Sentences(("good", "1"), ("bad", "unheard-of label")));
        Assert.IsInstanceOfType<InvalidOperationException>(error);
        StringAssert.Contains(error.Message, "'Label'");
        StringAssert.Contains(error.Message, "row 1");
    }

    [TestMethod]
    public void SequenceLengthOverTheModelsPositionsIsRejected()
    {
        var error = Fit(Sentences(("good", "1")), o => o.MaxSequenceLength = 1024);
        Assert.IsInstanceOfType<ArgumentOutOfRangeException>(error);
        StringAssert.Contains(error.Message, "MaxSequenceLength");
        StringAssert.Contains(error.Message, "max_position_embeddings = 512");
    }

    [TestMethod]
    public void MissingCheckpointPathIsRejected()
    {
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => MlContext.Zero().TextClassification(sentence1ColumnName: "Text"));
        StringAssert.Contains(error.Message, "CheckpointPath");
    }

    [TestMethod]
    [DataRow("vocab.txt")]
    [DataRow("config.json")]
    public void AMissingVocabOrConfigIsNamed(string file)
    {
        using var checkpoint = CheckpointWith(file, null);
        var error = Fit(Sentences(("good", "1")), checkpoint: checkpoint.Path);
        Assert.IsInstanceOfType<FileNotFoundException>(error);
        StringAssert.Contains(error.Message, file);
    }

    [TestMethod]
    public void MalformedConfigNamesTheKey()
    {
        using var checkpoint = CheckpointWith("config.json",
            "{\"model_type\":\"bert\",\"vocab_size\":30522,\"hidden_size\":\"wide\",\"num_hidden_layers\":6,\"num_attention_heads\":12,\"intermediate_size\":1536,\"max_position_embeddings\":512}");
        var error = Fit(Sentences(("good", "1")), checkpoint: checkpoint.Path);
        Assert.IsInstanceOfType<InvalidDataException>(error);
        StringAssert.Contains(error.Message, "'hidden_size'");
        StringAssert.Contains(error.Message, "positive integer");
        using var notJsonCheckpoint = CheckpointWith("config.json", "{ not json");
        var notJson = Fit(Sentences(("good", "1")), checkpoint: notJsonCheckpoint.Path);
        Assert.IsInstanceOfType<InvalidDataException>(notJson);
        StringAssert.Contains(notJson.Message, "config.json");
    }

    [TestMethod]
    [TestCategory("bert")]
    public void WeightsThatDoNotMatchTheConfigListTheNames()
    {
        var config = File.ReadAllText(Path.Combine(MiniLm.Directory(), "config.json")).Replace("\"num_hidden_layers\": 6", "\"num_hidden_layers\": 7").Replace("\"num_hidden_layers\":6", "\"num_hidden_layers\":7");
        using var checkpoint = CheckpointWith("config.json", config);
        var error = Fit(Sentences(("good", "1"), ("bad", "0")), checkpoint: checkpoint.Path);
        Assert.IsInstanceOfType<InvalidDataException>(error);
        StringAssert.Contains(error.Message, "Missing: encoder.layer.6.");
    }
}
