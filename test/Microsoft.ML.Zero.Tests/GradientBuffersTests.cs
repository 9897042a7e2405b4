using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Training;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

[TestClass]
public sealed class GradientBuffersTests
{
    // 1 + 2^-9 needs 9 significant bits: fp32 and fp16 hold it, bf16 (8 bits) rounds it to 1.
    private const float Small = 1f / 512;

    [TestMethod]
    [DataRow(true, ScalarType.Float32, 2 * (1 + Small))]
    [DataRow(true, ScalarType.BFloat16, 2f)]
    [DataRow(true, ScalarType.Float16, 2 * (1 + Small))]
    [DataRow(false, ScalarType.Float32, 2f)]
    [DataRow(false, ScalarType.BFloat16, 2f)]
    [DataRow(false, ScalarType.Float16, 2f)]
    public void MicroBatchesAddUpInTheAccumulationTypeAndSumInTheWireType(bool accumulateInFp32, ScalarType wire, float expected)
    {
        // Two ranks of a bf16 model each take two micro-batches (gradients 1, then 2^-9) and sum in two ranges, as
        // overlapped buckets do: the last range first, with the loss. 11 values through staging of 4 take several rounds.
        TorchRuntimeForTests.Load();
        const int Count = 11;
        var results = InProcessLauncher.Run(2, TimeSpan.FromSeconds(30), communicator =>
        {
            using var buffers = new GradientBuffers(communicator, Count, ScalarType.BFloat16, accumulateInFp32, wire, stagingValues: 4);
            Assert.AreEqual(ScalarType.BFloat16, buffers.ModelGradients.dtype);
            Assert.AreEqual(accumulateInFp32, buffers.Accumulated is not null, "an fp32 buffer exists only for fp32 accumulation");
            buffers.StartStep();
            buffers.ModelGradients.add_(1);
            buffers.EndMicroBatch();
            if (accumulateInFp32)
                Assert.AreEqual(0, buffers.ModelGradients.abs().sum(ScalarType.Float32).item<float>(), "the model's buffer is cleared for the next micro-batch");
            buffers.ModelGradients.add_(Small);
            buffers.Loss = communicator.Rank + 1;
            buffers.Reduce(6, Count - 6 + 1);
            buffers.Reduce(0, 6);
            Assert.AreEqual(accumulateInFp32 ? ScalarType.Float32 : ScalarType.BFloat16, buffers.Summed.dtype);
            return (buffers.Summed.to(ScalarType.Float32).data<float>().ToArray(), buffers.Loss);
        });
        foreach (var (values, loss) in results)
        {
            CollectionAssert.AreEqual(Enumerable.Repeat(expected, Count).ToArray(), values);
            Assert.AreEqual(3f, loss, "the loss element is summed with the values");
        }
    }

    [TestMethod]
    public void AStepClearsWhatTheLastOneAccumulated()
    {
        TorchRuntimeForTests.Load();
        var sums = InProcessLauncher.Run(1, TimeSpan.FromSeconds(30), communicator =>
        {
            using var buffers = new GradientBuffers(communicator, 5, ScalarType.BFloat16, accumulateInFp32: true, ScalarType.Float32, stagingValues: 4);
            var steps = new List<float>();
            foreach (float gradient in new[] { 3f, 5f })
            {
                buffers.StartStep();
                buffers.ModelGradients.add_(gradient);
                buffers.EndMicroBatch();
                buffers.ModelGradients.add_(gradient);
                buffers.Reduce(0, 6);
                steps.Add(buffers.Summed.sum().item<float>());
            }
            return steps;
        })[0];
        CollectionAssert.AreEqual(new[] { 30f, 50f }, sums);
    }
}
