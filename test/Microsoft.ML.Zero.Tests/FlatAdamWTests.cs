using Microsoft.ML.Zero.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

[TestClass]
public sealed class FlatAdamWTests
{
    [TestMethod]
    public void ChunksTakeTheStepsOfTorchSharpsAdamWWithDecayedRangesAcrossChunkEdges()
    {
        // 50 values in chunks of 7; decay on [0, 15) (two adjacent ranges, merged) and [20, 37), both across chunk edges.
        // TorchSharp's AdamW on the same values as two groups must take the same steps, with 16-bit gradients widened and
        // scaled per chunk, and the new values copied into a bf16 model buffer.
        TorchRuntimeForTests.Load();
        manual_seed(3);
        var settings = new OptimizerSettings(ZeroOptimizer.AdamW, 0.05, 0.9, 0.99, 1e-8, 0.1, 0);
        var initial = randn(50);
        var decay = new bool[50];
        foreach (var (start, length) in new[] { (0, 10), (10, 5), (20, 17) })
            for (int i = start; i < start + length; i++)
                decay[i] = true;

        using var flatWeights = initial.clone();
        using var gradients = zeros(50, ScalarType.BFloat16);
        using var model = zeros(50, ScalarType.BFloat16);
        using var flat = new FlatAdamW(flatWeights, gradients, new[] { (0L, 10L), (10L, 5L), (20L, 17L) }, settings, model, blockSize: 7);

        var parameters = Enumerable.Range(0, 50).Select(i => new Parameter(initial[i].clone().reshape(1))).ToArray();
        using var reference = optim.AdamW(new[]
        {
            new AdamW.ParamGroup(parameters.Where((_, i) => decay[i]), 0.05, 0.9, 0.99, 1e-8, 0.1),
            new AdamW.ParamGroup(parameters.Where((_, i) => !decay[i]), 0.05, 0.9, 0.99, 1e-8, 0),
        }, 0.05);

        for (int step = 0; step < 5; step++)
        {
            // Scaled gradients: bf16 values times 0.5, as unscaling or clipping would apply.
            gradients.copy_(randn(50));
            var widened = gradients.to(ScalarType.Float32) * 0.5;
            for (int i = 0; i < 50; i++)
                parameters[i].grad = widened[i].reshape(1).clone();
            reference.step();
            flat.Step(gradientScale: 0.5);

            var expected = parameters.Select(p => p.item<float>()).ToArray();
            // Within a few float roundings: libtorch's vector kernels round differently on different CPUs (Intel, AMD).
            var actual = flatWeights.data<float>().ToArray();
            for (int i = 0; i < 50; i++)
                Assert.AreEqual(expected[i], actual[i], 1e-6 * Math.Max(1, Math.Abs(expected[i])), $"step {step}, value {i}");
            CollectionAssert.AreEqual(flatWeights.to(ScalarType.BFloat16).to(ScalarType.Float32).data<float>().ToArray(),
                model.to(ScalarType.Float32).data<float>().ToArray(), $"step {step}: the bf16 copy");
        }
        Assert.IsTrue((flatWeights - initial).abs().max().item<float>() > 0.1, "the weights moved");
    }
}
