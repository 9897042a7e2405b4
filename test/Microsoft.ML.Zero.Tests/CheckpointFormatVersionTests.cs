using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>A checkpoint in a format this build does not read fails on load, saying which file and which versions.</summary>
[TestClass]
public sealed class CheckpointFormatVersionTests
{
    [TestMethod]
    public void ACheckpointOfANewerFormatVersionFailsNamingTheFileAndBothVersions()
    {
        using var temp = new TempFolder("zero-format-version-");
        string directory = temp.Path;
        ZeroEngine.Launch(1, rank =>
        {
            using var model = rank.CreateModel(1, () => nn.Linear(4, 3));
            using var engine = ZeroEngine.Initialize(model);
            string folder = engine.SaveCheckpoint(directory);
            string statePath = Path.Combine(folder, "state.json");
            var state = JsonNode.Parse(File.ReadAllText(statePath))!;
            Assert.AreEqual(1, (int)state["FormatVersion"]!, "the version this build writes");
            engine.LoadCheckpoint(directory);

            state["FormatVersion"] = 99;
            File.WriteAllText(statePath, state.ToJsonString());
            var error = Assert.ThrowsExactly<InvalidDataException>(() => engine.LoadCheckpoint(directory));
            StringAssert.Contains(error.Message, statePath);
            StringAssert.Contains(error.Message, "format version 99");
            StringAssert.Contains(error.Message, "reads format version 1");
        });
    }
}
