using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.Training;

/// <summary>
/// AdamW over the engine's flat fp32 weights (the master weights in mixed precision), in one pass over memory: each
/// value's decoupled weight decay, moment updates, bias corrections and update are computed together, with the fp32
/// operations of TorchSharp's AdamW in the same order, so the weights are the same bits (tests check it). TorchSharp's
/// AdamW makes about ten passes over every parameter; even in cache-sized chunks that was 3.5x slower on 22.7 M
/// parameters here (84 against about 30 ms a step on one thread, Intel Xeon with AVX-512).
/// Values named for no weight decay keep theirs. Gradients may be 16-bit (accumulated in the model's type): each block
/// is widened to fp32 and scaled as it is used, and in mixed precision each block's new weights are rounded into the
/// model's 16-bit copy while still in cache. The work is split over the calling rank's libtorch threads.
/// </summary>
internal sealed unsafe class FlatAdamW : IStepOptimizer
{
    /// <summary>Values updated at a time: their widened gradients and new 16-bit weights stay on the stack (4 KB).</summary>
    public const int DefaultBlockSize = 1024;

    private readonly int _blockSize;

    private readonly Tensor _weights;
    private readonly Tensor _gradients;
    private readonly Tensor _averages;
    private readonly Tensor _squares;
    private readonly Tensor? _lowPrecisionCopy;
    private readonly ScalarType _gradientFormat, _copyFormat;
    private readonly (long Start, long Length, bool Decayed)[] _segments;
    private readonly double _epsilon;
    private readonly double _weightDecay;
    private long _step;

    /// <param name="weights">The flat fp32 weights.</param>
    /// <param name="gradients">Their gradients, fp32 or 16-bit, as long as <paramref name="weights"/> (the engine's buffer).</param>
    /// <param name="decayed">The ranges of <paramref name="weights"/> that get weight decay.</param>
    /// <param name="settings">The learning rate, betas, epsilon and weight decay.</param>
    /// <param name="lowPrecisionCopy">In mixed precision, the model's 16-bit weights: each block's new values are rounded into it.</param>
    /// <param name="blockSize">Values per block (small in tests, to cross block edges).</param>
    public FlatAdamW(Tensor weights, Tensor gradients, IEnumerable<(long Start, long Length)> decayed, OptimizerSettings settings,
        Tensor? lowPrecisionCopy = null, int blockSize = DefaultBlockSize)
    {
        OptionCheck.Require(blockSize is >= 1 and <= DefaultBlockSize, nameof(blockSize), blockSize, $"1 to {DefaultBlockSize}");
        _blockSize = blockSize;
        _lowPrecisionCopy = lowPrecisionCopy;
        _weights = weights;
        _gradients = gradients;
        _gradientFormat = Format(gradients);
        _copyFormat = lowPrecisionCopy is null ? ScalarType.Float32 : Format(lowPrecisionCopy);
        _averages = zeros_like(weights);
        _squares = zeros_like(weights);
        _segments = Segments(decayed, weights.numel());
        _epsilon = settings.Epsilon;
        _weightDecay = settings.WeightDecay;
        LearningRate = BaseLearningRate = settings.LearningRate;
        (Beta1, Beta2) = (settings.Beta1, settings.Beta2);
    }

    public double BaseLearningRate { get; }

    public string StateFileName => CheckpointStore.FlatOptimizerFileName;

    /// <summary>The bytes of its state: both moments.</summary>
    public long StateBytes => TensorMemory.Bytes(_averages, _squares);

    public double LearningRate { get; set; }

    public double Beta1 { get; set; }

    public double Beta2 { get; set; }

    /// <summary>The schedule's rate; OneCycle's momentum becomes the betas (momentum, 0.99), as <see cref="OptimizerSettings.SetMomentum"/>.</summary>
    public void Schedule(Func<double, double> rateFromBase, double? momentum)
    {
        LearningRate = rateFromBase(BaseLearningRate);
        if (momentum is { } betaOne)
            (Beta1, Beta2) = (betaOne, 0.99);
    }

    /// <summary>The fp32 constants of one step, the scalars TorchSharp's AdamW would pass to its tensor operations.</summary>
    private readonly record struct Coefficients(float Decay, float GradientScale, float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2,
        float Correction2, float Epsilon, float StepSize);

    /// <summary>Takes one step with the gradients multiplied by <paramref name="gradientScale"/> (unscaling, averaging, clipping).</summary>
    public void Step(double gradientScale = 1)
    {
        _step++;
        double correction1 = 1 - Math.Pow(Beta1, _step), correction2 = Math.Sqrt(1 - Math.Pow(Beta2, _step));
        var decayed = new Coefficients((float)(1 - LearningRate * _weightDecay), (float)gradientScale, (float)Beta1, (float)(1 - Beta1),
            (float)Beta2, (float)(1 - Beta2), (float)correction2, (float)_epsilon, (float)(-LearningRate / correction1));
        var plain = decayed with { Decay = 1 };
        long count = _weights.numel();
        int threads = (int)Math.Clamp(count / _blockSize, 1, get_num_threads());
        if (threads == 1)
        {
            Update(0, count, decayed, plain);
            return;
        }
        // A contiguous range of values per thread: each value's arithmetic is the same whichever thread does it.
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, part =>
        {
            var (start, length) = Chunking.Chunk((int)count, threads, part, alignment: 16);
            Update(start, start + length, decayed, plain);
        });
    }

    // Values [from, to), a block at a time, each with its segment's coefficients.
    private void Update(long from, long to, Coefficients decayed, Coefficients plain)
    {
        float* weights = Pointer(TensorMemory.AsSpan(_weights)), averages = Pointer(TensorMemory.AsSpan(_averages)), squares = Pointer(TensorMemory.AsSpan(_squares));
        float* gradients = _gradientFormat == ScalarType.Float32 ? Pointer(TensorMemory.AsSpan(_gradients)) : null;
        ushort* gradientBits = _gradientFormat == ScalarType.Float32 ? null : Pointer(TensorMemory.AsBits(_gradients));
        ushort* copyBits = _lowPrecisionCopy is null ? null : Pointer(TensorMemory.AsBits(_lowPrecisionCopy));
        float* widened = stackalloc float[DefaultBlockSize];
        foreach (var (segmentStart, segmentLength, isDecayed) in _segments)
        {
            long end = Math.Min(to, segmentStart + segmentLength);
            for (long start = Math.Max(from, segmentStart); start < end; start += _blockSize)
            {
                int length = (int)Math.Min(_blockSize, end - start);
                float* gradient = gradients + start;
                if (gradientBits is not null)
                {
                    HalfFloats.Widen(new ReadOnlySpan<ushort>(gradientBits + start, length), new Span<float>(widened, length), _gradientFormat);
                    gradient = widened;
                }
                Update(weights + start, gradient, averages + start, squares + start, length, isDecayed ? decayed : plain);
                if (copyBits is not null)
                    HalfFloats.Round(new ReadOnlySpan<float>(weights + start, length), new Span<ushort>(copyBits + start, length), _copyFormat);
            }
        }
    }

    // One value: w = w * (1 - lr * wd); m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g g; w += (-lr / c1) m / (sqrt(v) / c2 + eps),
    // with g the gradient times its scale: TorchSharp's AdamW (decay, then the moments, then addcdiv), operation by operation.
    // libtorch's AVX2 and AVX-512 kernels fuse add(alpha) and addcmul into multiply-adds, so these do too. On a CPU
    // without FMA the scalar loop still fuses (in software): the result never depends on the CPU, though libtorch's
    // unfused kernels there would differ in the last bit.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Update(float* w, float* g, float* m, float* v, int length, in Coefficients c)
    {
        int i = 0;
        if (Fma.IsSupported)
        {
            var decay = Vector256.Create(c.Decay);
            var scale = Vector256.Create(c.GradientScale);
            var beta1 = Vector256.Create(c.Beta1);
            var oneMinusBeta1 = Vector256.Create(c.OneMinusBeta1);
            var beta2 = Vector256.Create(c.Beta2);
            var oneMinusBeta2 = Vector256.Create(c.OneMinusBeta2);
            var correction2 = Vector256.Create(c.Correction2);
            var epsilon = Vector256.Create(c.Epsilon);
            var stepSize = Vector256.Create(c.StepSize);
            for (; i <= length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var gradient = Vector256.Load(g + i) * scale;
                var average = Fma.MultiplyAdd(gradient, oneMinusBeta1, Vector256.Load(m + i) * beta1);
                var square = Fma.MultiplyAdd(oneMinusBeta2 * gradient, gradient, Vector256.Load(v + i) * beta2);
                var denominator = Vector256.Sqrt(square) / correction2 + epsilon;
                var weight = Vector256.Load(w + i) * decay + stepSize * average / denominator;
                average.Store(m + i);
                square.Store(v + i);
                weight.Store(w + i);
            }
        }
        for (; i < length; i++)
        {
            float gradient = g[i] * c.GradientScale;
            float average = MathF.FusedMultiplyAdd(gradient, c.OneMinusBeta1, m[i] * c.Beta1);
            float square = MathF.FusedMultiplyAdd(c.OneMinusBeta2 * gradient, gradient, v[i] * c.Beta2);
            float denominator = MathF.Sqrt(square) / c.Correction2 + c.Epsilon;
            m[i] = average;
            v[i] = square;
            w[i] = w[i] * c.Decay + c.StepSize * average / denominator;
        }
    }

    // Tensor storage is native memory, which the garbage collector never moves.
    private static T* Pointer<T>(Span<T> storage) where T : unmanaged => (T*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(storage));

    private static ScalarType Format(Tensor tensor) => tensor.dtype switch
    {
        ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 => tensor.dtype,
        var type => throw new ArgumentException($"Expected Float32, BFloat16 or Float16 values; got {type}."),
    };

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

    // [0, count) cut into runs with and without weight decay; adjacent decayed parameters become one run.
    private static (long Start, long Length, bool Decayed)[] Segments(IEnumerable<(long Start, long Length)> decayed, long count)
    {
        var segments = new List<(long Start, long Length, bool Decayed)>();
        long end = 0;
        foreach (var (start, length) in decayed.Where(r => r.Length > 0).OrderBy(r => r.Start))
        {
            if (start > end)
                segments.Add((end, start - end, false));
            if (segments.Count > 0 && segments[^1].Decayed && segments[^1].Start + segments[^1].Length == start)
                segments[^1] = (segments[^1].Start, segments[^1].Length + length, true);
            else
                segments.Add((start, length, true));
            end = start + length;
        }
        if (end < count)
            segments.Add((end, count - end, false));
        return segments.ToArray();
    }

    public void Dispose()
    {
        _averages.Dispose();
        _squares.Dispose();
    }
}
