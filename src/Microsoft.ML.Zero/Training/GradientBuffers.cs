using static TorchSharp.torch;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.Training;

/// <summary>
/// One rank's gradients and their sum over all ranks. Backward writes into <see cref="ModelGradients"/> (the model's
/// .grad tensors are views of it). Gradients accumulate over a step's micro-batches in fp32 or in the model's 16-bit
/// type (data_types.grad_accum_dtype): in mixed precision with fp32 accumulation each micro-batch is added into
/// <see cref="Accumulated"/>, at 4 more bytes per value. <see cref="Reduce"/> sums ranges in the type gradients travel
/// in (communication_data_type); a type that differs from the buffer's goes through a staging buffer of one bucket.
/// The rank's loss rides along as one more element, index count of every range.
/// </summary>
internal sealed class GradientBuffers : IDisposable
{
    private readonly ICommunicator _communicator;
    private readonly long _count;
    private readonly ScalarType _wireType;

    // The fp32 buffer, loss element included, when gradients accumulate in fp32. The communicator allocates it: MPI
    // ranks on one machine sum it through shared memory, where it lives.
    private readonly ReduceBuffer? _fp32Buffer;
    // The model's 16-bit gradients; the communicator places them too when they travel as they are.
    private readonly ReduceBuffer? _lowPrecisionBuffer;
    private readonly Tensor? _lowPrecision;
    private readonly float[] _lossWithoutFp32Buffer = new float[1];

    // Where a range goes when the wire type is not the type it accumulated in: one bucket of the wire type at a time.
    private readonly ReduceBuffer? _stagingBuffer;
    private readonly bool _throughStaging;
    private readonly Tensor? _staging;

    // Mixed precision with fp32 accumulation: whether Accumulated holds earlier micro-batches of this step.
    private bool _folded;

    /// <param name="communicator">The ranks that sum the gradients.</param>
    /// <param name="count">The number of gradient values.</param>
    /// <param name="modelType">The model's 16-bit type in mixed precision, else null (fp32 training).</param>
    /// <param name="accumulateInFp32">Accumulate in fp32 rather than in <paramref name="modelType"/>; always true in fp32 training.</param>
    /// <param name="wireType">The type sums are taken in (communication_data_type).</param>
    /// <param name="stagingValues">The most values a staging buffer holds (reduce_bucket_size).</param>
    public GradientBuffers(ICommunicator communicator, long count, ScalarType? modelType, bool accumulateInFp32, ScalarType wireType, long stagingValues)
    {
        _communicator = communicator;
        _count = count;
        _wireType = wireType;
        if (modelType is { } type)
        {
            _lowPrecisionBuffer = type == _wireType ? communicator.AllocateReduceBuffer(count, wireType) : new ReduceBuffer(zeros(count, type));
            _lowPrecision = _lowPrecisionBuffer.Values;
        }
        if (accumulateInFp32 || _lowPrecision is null)
        {
            // With a 16-bit wire the sums are taken in another buffer (the model's or the staging one): no need to share this one.
            _fp32Buffer = wireType == ScalarType.Float32 ? communicator.AllocateReduceBuffer(count + 1) : new ReduceBuffer(zeros(count + 1));
            Accumulated = _fp32Buffer.Values.narrow(0, 0, count);
        }
        var bufferType = Accumulated is null ? _lowPrecision!.dtype : ScalarType.Float32;
        _throughStaging = _wireType != bufferType && _wireType != _lowPrecision?.dtype;
        // One rank's sum is its own values: nothing to stage.
        if (_throughStaging && communicator.WorldSize > 1)
        {
            _stagingBuffer = communicator.AllocateReduceBuffer(Math.Max(1, Math.Min(count, stagingValues)), wireType);
            _staging = _stagingBuffer.Values;
        }
        ModelGradients = _lowPrecision ?? Accumulated!;
    }

    /// <summary>The buffer backward writes into: fp32 in fp32 training, else the model's 16-bit type.</summary>
    public Tensor ModelGradients { get; }

    /// <summary>The fp32 accumulation buffer (the model's own in fp32 training), or null when accumulating in 16 bits.</summary>
    public Tensor? Accumulated { get; }

    /// <summary>After <see cref="Reduce"/>: the summed gradients, fp32 or the model's 16-bit type.</summary>
    public Tensor Summed => Accumulated ?? ModelGradients;

    /// <summary>The rank's loss before the reduction, the sum over ranks after it.</summary>
    public float Loss
    {
        get => LossElement[0];
        set => LossElement[0] = value;
    }

    /// <summary>The bytes of the gradients: the model's and their fp32 accumulation.</summary>
    public long GradientBytes => TensorMemory.Bytes(_fp32Buffer?.Values, _lowPrecision);

    /// <summary>The bytes of the staging buffer (one bucket), when sums travel in another type.</summary>
    public long StagingBytes => TensorMemory.Bytes(_staging);

    /// <summary>For logs: how sums travel when the communicator chose a way worth telling, else null.</summary>
    public string? Transport => _fp32Buffer?.Transport ?? _lowPrecisionBuffer?.Transport ?? _stagingBuffer?.Transport;

    private Span<float> LossElement => _fp32Buffer is null ? _lossWithoutFp32Buffer : TensorMemory.AsSpan(_fp32Buffer.Values).Slice((int)_count, 1);

    /// <summary>Clears the gradients before a step's first micro-batch.</summary>
    public void StartStep()
    {
        ModelGradients.zero_();
        _folded = false;
    }

    /// <summary>
    /// Mixed precision with fp32 accumulation: adds the model's gradients of the micro-batch that just ended into
    /// <see cref="Accumulated"/> and clears them for the next one. Nothing to do otherwise.
    /// </summary>
    public void EndMicroBatch()
    {
        if (_lowPrecision is null || Accumulated is null)
            return;
        using var _ = no_grad();
        if (_folded)
            Accumulated.add_(_lowPrecision);
        else
            Accumulated.copy_(_lowPrecision);
        _lowPrecision.zero_();
        _folded = true;
    }

    /// <summary>Sums the values from <paramref name="start"/> over all ranks; index count is the loss element.</summary>
    public void Reduce(long start, long length)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        long values = Math.Min(length, _count - start);
        bool lossIncluded = start + length > _count;
        if (values > 0)
        {
            var accumulated = Accumulated?.narrow(0, start, values);
            var model = _lowPrecision?.narrow(0, start, values);
            if (model is not null && _wireType == model.dtype)
            {
                // The model's gradients travel as they are (after adding the earlier micro-batches), then land in fp32.
                if (accumulated is not null && _folded)
                    model.copy_(accumulated.add_(model));
                _communicator.AllReduce(TensorMemory.AsBits(_lowPrecision!).Slice((int)start, (int)values), _wireType);
                accumulated?.copy_(model);
            }
            else
            {
                // The step's gradients in one buffer: the accumulation buffer takes the last micro-batch's.
                if (accumulated is not null && model is not null)
                {
                    if (_folded)
                        accumulated.add_(model);
                    else
                        accumulated.copy_(model);
                }
                if (_throughStaging)
                {
                    if (_staging is not null)
                        ReduceThroughStaging(accumulated ?? model!, _staging);
                }
                else
                {
                    // The loss element follows the values: one all-reduce takes both.
                    _communicator.AllReduce(TensorMemory.AsSpan(_fp32Buffer!.Values).Slice((int)start, (int)values + (lossIncluded ? 1 : 0)), ReduceOperation.Sum);
                    lossIncluded = false;
                }
            }
        }
        if (lossIncluded)
            _communicator.AllReduce(LossElement, ReduceOperation.Sum);
    }

    private void ReduceThroughStaging(Tensor summed, Tensor stagingBuffer)
    {
        long length = summed.numel();
        for (long offset = 0; offset < length; offset += stagingBuffer.numel())
        {
            long values = Math.Min(stagingBuffer.numel(), length - offset);
            var staging = stagingBuffer.narrow(0, 0, values);
            var range = summed.narrow(0, offset, values);
            staging.copy_(range);
            if (_wireType == ScalarType.Float32)
                _communicator.AllReduce(TensorMemory.AsSpan(stagingBuffer).Slice(0, (int)values), ReduceOperation.Sum);
            else
                _communicator.AllReduce(TensorMemory.AsBits(stagingBuffer).Slice(0, (int)values), _wireType);
            range.copy_(staging);
        }
    }

    public void Dispose()
    {
        _fp32Buffer?.Dispose();
        _lowPrecisionBuffer?.Dispose();
        _stagingBuffer?.Dispose();
    }
}
