using System.Text.Json.Nodes;
using Microsoft.ML.Zero.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>
/// A state.json whose counters or loss scale are out of range is refused when read, with an InvalidDataException that
/// names the file, the field, the value and what was expected, before a resume starts from it: a zero or negative
/// scale would train on zeroed or sign-flipped gradients, negative counters would replay the schedule and the data.
/// </summary>
[TestClass]
public sealed class CheckpointStateBoundsTests
{
    private static readonly TrainingState Valid = new()
    {
        GlobalStep = 12, SkippedSteps = 1, GlobalSamples = 384, Epoch = 1, StepInEpoch = 3, EpochLossTotal = 4.5,
        LossScaler = new LossScalerState(Scale: 1024, HysteresisLeft: 2, Iteration: 13, LastOverflowIteration: 7),
        WorldSize = 2, TrainBatchSize = 32, TrainMicroBatchSizePerGpu = 16, GradientAccumulationSteps = 1, RowCount = 150, Seed = 0,
        ParameterCount = 35, Precision = "Fp16", Optimizer = "AdamW",
    };

    // A folder holding Valid's state.json with one field (a dotted path, such as LossScaler.Scale) replaced by json.
    private static TempFolder StateWith(string field, string? json)
    {
        var folder = new TempFolder("zero-state-bounds-");
        CheckpointStore.WriteState(folder.Path, Valid);
        if (json is not null)
        {
            string path = folder.Combine(CheckpointStore.StateFileName);
            var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            string[] parts = field.Split('.');
            var parent = parts[..^1].Aggregate(root, (node, part) => node[part]!.AsObject());
            Assert.IsTrue(parent.ContainsKey(parts[^1]), $"state.json has {field}");
            parent[parts[^1]] = JsonNode.Parse(json);
            File.WriteAllText(path, root.ToJsonString());
        }
        return folder;
    }

    [TestMethod]
    public void AValidStateReads()
    {
        using var folder = StateWith("", null);
        Assert.AreEqual(Valid, CheckpointStore.ReadState(folder.Path) with { LossScaler = Valid.LossScaler });
        Assert.AreEqual(Valid.LossScaler, CheckpointStore.ReadState(folder.Path).LossScaler);
    }

    [TestMethod]
    [DataRow("LossScaler.Scale", "0", "LossScaler.Scale is 0; expected a finite number above 0")]
    [DataRow("LossScaler.Scale", "-1024", "LossScaler.Scale is -1024; expected a finite number above 0")]
    [DataRow("LossScaler.Scale", "-0.0", "LossScaler.Scale is -0; expected a finite number above 0")]
    [DataRow("LossScaler.HysteresisLeft", "-1", "LossScaler.HysteresisLeft is -1; expected 0 or more")]
    [DataRow("LossScaler.Iteration", "-3", "LossScaler.Iteration is -3; expected 0 or more")]
    [DataRow("LossScaler.LastOverflowIteration", "-2", "LossScaler.LastOverflowIteration is -2; expected -1 (no overflow yet) or more")]
    [DataRow("Epoch", "-1", "Epoch is -1; expected 0 or more")]
    [DataRow("StepInEpoch", "-1", "StepInEpoch is -1; expected 0 or more")]
    [DataRow("GlobalStep", "-5", "GlobalStep is -5; expected 0 or more")]
    [DataRow("SkippedSteps", "-1", "SkippedSteps is -1; expected 0 or more")]
    [DataRow("GlobalSamples", "-9223372036854775808", "GlobalSamples is -9223372036854775808; expected 0 or more")]
    [DataRow("ParameterCount", "0", "ParameterCount is 0; expected at least 1")]
    [DataRow("ParameterCount", "-35", "ParameterCount is -35; expected at least 1")]
    public void AFieldOutOfRangeIsNamedWithItsValue(string field, string json, string expected)
    {
        using var folder = StateWith(field, json);
        var error = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointStore.ReadState(folder.Path));
        StringAssert.Contains(error.Message, folder.Combine(CheckpointStore.StateFileName));
        StringAssert.Contains(error.Message, expected);
    }

    [TestMethod]
    public void AScaleBeyondDoublesRangeIsRefused()
    {
        // 1e999 is valid JSON, which System.Text.Json reads as infinity (NaN and Infinity are not JSON numbers).
        using var folder = StateWith("LossScaler.Scale", "1e999");
        var error = Assert.ThrowsExactly<InvalidDataException>(() => CheckpointStore.ReadState(folder.Path));
        StringAssert.Contains(error.Message, folder.Combine(CheckpointStore.StateFileName));
        StringAssert.Contains(error.Message, $"LossScaler.Scale is {double.PositiveInfinity}; expected a finite number above 0");
    }

    [TestMethod]
    public void TheEngineRefusesToResumeFromAStateOutOfRange()
    {
        using var temp = new TempFolder("zero-state-bounds-");
        string directory = temp.Path;
        ZeroEngine.Launch(1, rank =>
        {
            using var model = rank.CreateModel(1, () => nn.Linear(4, 3));
            using var engine = ZeroEngine.Initialize(model);
            string folder = engine.SaveCheckpoint(directory);
            string statePath = Path.Combine(folder, CheckpointStore.StateFileName);
            var state = JsonNode.Parse(File.ReadAllText(statePath))!;
            state["GlobalStep"] = -1;
            File.WriteAllText(statePath, state.ToJsonString());
            var error = Assert.ThrowsExactly<InvalidDataException>(() => engine.LoadCheckpoint(directory));
            StringAssert.Contains(error.Message, statePath);
            StringAssert.Contains(error.Message, "GlobalStep is -1; expected 0 or more");
        });
    }
}
