using Microsoft.ML.Zero.Distributed;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Training;

/// <summary>
/// Sums ranges of the flat fp32 gradient buffer over all ranks, in the type gradients travel in
/// (communication_data_type). In fp32 the range, loss element included, goes out as is, after the model's bf16/fp16
/// gradients are copied in. In bf16/fp16 the values go out as 16-bit floats (the model's own gradient buffer when it
/// already has that type, so nothing is copied) and come back into the fp32 buffer; the loss element stays fp32.
/// </summary>
internal sealed class GradientReduction : IDisposable
{
    private readonly ICommunicator _communicator;
    private readonly Tensor _gradients;
    private readonly Tensor? _lowPrecisionGradients;
    private readonly long _count;
    private readonly ZeroPrecision _wireFormat;
    private readonly Tensor? _wire;
    private readonly bool _wireIsModelGradients;

    /// <summary>
    /// Reduces <paramref name="gradients"/> (fp32: <paramref name="count"/> values plus the loss element), filled from the
    /// model's bf16/fp16 <paramref name="lowPrecisionGradients"/> (null in fp32), sending <paramref name="wireFormat"/>.
    /// </summary>
    public GradientReduction(ICommunicator communicator, Tensor gradients, Tensor? lowPrecisionGradients, long count, ZeroPrecision wireFormat)
    {
        _communicator = communicator;
        _gradients = gradients;
        _lowPrecisionGradients = lowPrecisionGradients;
        _count = count;
        _wireFormat = wireFormat;
        if (wireFormat == ZeroPrecision.Fp32)
            return;
        var wireType = wireFormat == ZeroPrecision.Bf16 ? ScalarType.BFloat16 : ScalarType.Float16;
        _wireIsModelGradients = lowPrecisionGradients?.dtype == wireType;
        _wire = _wireIsModelGradients ? lowPrecisionGradients : zeros(count, wireType);
    }

    /// <summary>All-reduces (sums) the values from <paramref name="start"/>; the loss element is at index count.</summary>
    public void Reduce(long start, long length)
    {
        using var scope = NewDisposeScope();
        long values = Math.Min(length, _count - start);
        if (_wire is null)
        {
            if (_lowPrecisionGradients is not null && values > 0)
                _gradients.narrow(0, start, values).copy_(_lowPrecisionGradients.narrow(0, start, values));
            _communicator.AllReduce(TensorMemory.AsSpan(_gradients).Slice((int)start, (int)length), ReduceOperation.Sum);
            return;
        }
        if (values > 0)
        {
            var wire = _wire.narrow(0, start, values);
            if (!_wireIsModelGradients)
                wire.copy_((_lowPrecisionGradients ?? _gradients).narrow(0, start, values));
            _communicator.AllReduce(TensorMemory.AsBits(_wire).Slice((int)start, (int)values), _wireFormat);
            _gradients.narrow(0, start, values).copy_(wire);
        }
        if (start + length > _count)
            _communicator.AllReduce(TensorMemory.AsSpan(_gradients).Slice((int)_count, 1), ReduceOperation.Sum);
    }

    public void Dispose()
    {
        if (!_wireIsModelGradients)
            _wire?.Dispose();
    }
}
