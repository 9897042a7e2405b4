using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Distributed;

/// <summary>A buffer from <see cref="ICommunicator.AllocateReduceBuffer"/>: its values, and what to release with it.</summary>
internal sealed class ReduceBuffer : IDisposable
{
    private Action? _release;

    /// <summary>Wraps <paramref name="values"/>; <paramref name="release"/> runs once, after the values are disposed.</summary>
    public ReduceBuffer(Tensor values, string? transport = null, Action? release = null)
    {
        Values = values;
        Transport = transport;
        _release = release;
    }

    /// <summary>The values, a 1-D contiguous CPU tensor of the type asked for.</summary>
    public Tensor Values { get; }

    /// <summary>For logs: how all-reduces of this buffer travel when that differs from the communicator's usual way, else null.</summary>
    public string? Transport { get; }

    /// <summary>Disposes <see cref="Values"/>, then releases what the communicator holds for the buffer.</summary>
    public void Dispose()
    {
        Values.Dispose();
        Interlocked.Exchange(ref _release, null)?.Invoke();
    }
}
