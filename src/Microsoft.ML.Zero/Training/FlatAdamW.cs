using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Training;

/// <summary>
/// AdamW over the engine's flat fp32 weights (the master weights in mixed precision), with TorchSharp's AdamW arithmetic
/// (decoupled weight decay, then the moment updates, bias corrections and update in the same order) applied to chunks of about
/// 1 M values: each chunk's passes stay in the CPU's cache, where TorchSharp's AdamW makes every pass over every
/// parameter from memory (about 6x slower on 110 M parameters here). Values named for no weight decay keep theirs.
/// Gradients may be 16-bit (accumulated in the model's type): each chunk is widened to fp32 and scaled as it is used.
/// </summary>
internal sealed class FlatAdamW : IDisposable
{
    /// <summary>Values per chunk: 4 MB of fp32, which stays in the CPU's cache while a chunk is worked on.</summary>
    public const long DefaultChunkSize = 1 << 20;

    private readonly long _chunkSize;

    private readonly Tensor _weights;
    private readonly Tensor _gradients;
    private readonly Tensor _averages;
    private readonly Tensor _squares;
    private readonly Tensor _denominator;
    private readonly Tensor _widened;
    private readonly Tensor? _lowPrecisionCopy;
    private readonly (long Start, long Length)[] _decayed;
    private readonly double _epsilon;
    private readonly double _weightDecay;
    private long _step;

    /// <param name="weights">The flat fp32 weights.</param>
    /// <param name="gradients">Their gradients, fp32 or 16-bit, as long as <paramref name="weights"/> (the engine's buffer).</param>
    /// <param name="decayed">The ranges of <paramref name="weights"/> that get weight decay.</param>
    /// <param name="settings">The learning rate, betas, epsilon and weight decay.</param>
    /// <param name="lowPrecisionCopy">In mixed precision, the model's 16-bit weights: each chunk's new values are copied there.</param>
    /// <param name="chunkSize">Values per chunk.</param>
    public FlatAdamW(Tensor weights, Tensor gradients, IEnumerable<(long Start, long Length)> decayed, OptimizerSettings settings,
        Tensor? lowPrecisionCopy = null, long chunkSize = DefaultChunkSize)
    {
        _chunkSize = chunkSize;
        _lowPrecisionCopy = lowPrecisionCopy;
        _weights = weights;
        _gradients = gradients;
        _averages = zeros_like(weights);
        _squares = zeros_like(weights);
        _denominator = empty(Math.Min(chunkSize, weights.numel()));
        _widened = empty(Math.Min(chunkSize, weights.numel()));
        _decayed = Merge(decayed);
        _epsilon = settings.Epsilon;
        _weightDecay = settings.WeightDecay;
        LearningRate = settings.LearningRate;
        (Beta1, Beta2) = (settings.Beta1, settings.Beta2);
    }

    /// <summary>The bytes of its state: both moments.</summary>
    public long StateBytes => TensorMemory.Bytes(_averages, _squares);

    /// <summary>The bytes of its two chunk-sized work buffers.</summary>
    public long WorkingBytes => TensorMemory.Bytes(_denominator, _widened);

    public double LearningRate { get; set; }

    public double Beta1 { get; set; }

    public double Beta2 { get; set; }

    /// <summary>Takes one step with the gradients multiplied by <paramref name="gradientScale"/> (unscaling, averaging, clipping).</summary>
    public void Step(double gradientScale = 1)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        _step++;
        double correction1 = 1 - Math.Pow(Beta1, _step), correction2 = Math.Sqrt(1 - Math.Pow(Beta2, _step));
        long count = _weights.numel();
        int decayed = 0;
        for (long start = 0; start < count; start += _chunkSize)
        {
            using var chunk = NewDisposeScope();
            long length = Math.Min(_chunkSize, count - start), end = start + length;
            // Decoupled weight decay first, on the decayed ranges' parts in this chunk.
            for (; _weightDecay != 0 && decayed < _decayed.Length && _decayed[decayed].Start < end; decayed++)
            {
                var (rangeStart, rangeLength) = _decayed[decayed];
                long from = Math.Max(start, rangeStart), to = Math.Min(end, rangeStart + rangeLength);
                if (to > from)
                    _weights.narrow(0, from, to - from).mul_(1 - LearningRate * _weightDecay);
                if (rangeStart + rangeLength > end)
                    break;   // the range goes on into the next chunk
            }
            var gradient = _gradients.narrow(0, start, length);
            if (gradient.dtype != ScalarType.Float32 || gradientScale != 1)
                gradient = _widened.narrow(0, 0, length).copy_(gradient).mul_(gradientScale);
            var average = _averages.narrow(0, start, length).mul_(Beta1).add_(gradient, alpha: 1 - Beta1);
            var square = _squares.narrow(0, start, length).mul_(Beta2).addcmul_(gradient, gradient, value: 1 - Beta2);
            var denominator = _denominator.narrow(0, 0, length).copy_(square).sqrt_().div_(correction2).add_(_epsilon);
            var weights = _weights.narrow(0, start, length).addcdiv_(average, denominator, value: -LearningRate / correction1);
            _lowPrecisionCopy?.narrow(0, start, length).copy_(weights);
        }
    }

    /// <summary>Writes the step count and both moments (raw fp32).</summary>
    public void Save(string path)
    {
        using var file = File.Create(path);
        using var writer = new BinaryWriter(file);
        writer.Write(_step);
        writer.Write((int)_averages.numel());
        writer.Flush();
        file.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(TensorMemory.AsSpan(_averages)));
        file.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(TensorMemory.AsSpan(_squares)));
    }

    public void Load(string path)
    {
        using var file = File.OpenRead(path);
        using var reader = new BinaryReader(file);
        long step = reader.ReadInt64();
        int count = reader.ReadInt32();
        if (count != _averages.numel() || file.Length != 12 + 8L * count)
            throw new InvalidDataException($"Optimizer state '{path}' holds {count} values; the model has {_averages.numel()}.");
        file.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(TensorMemory.AsSpan(_averages)));
        file.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(TensorMemory.AsSpan(_squares)));
        _step = step;
    }

    // Adjacent parameters that both get decay become one range: fewer, longer passes.
    private static (long Start, long Length)[] Merge(IEnumerable<(long Start, long Length)> ranges)
    {
        var merged = new List<(long Start, long Length)>();
        foreach (var (start, length) in ranges.OrderBy(r => r.Start))
        {
            if (merged.Count > 0 && merged[^1].Start + merged[^1].Length == start)
                merged[^1] = (merged[^1].Start, merged[^1].Length + length);
            else
                merged.Add((start, length));
        }
        return merged.ToArray();
    }

    public void Dispose()
    {
        _averages.Dispose();
        _squares.Dispose();
        _denominator.Dispose();
        _widened.Dispose();
    }
}
