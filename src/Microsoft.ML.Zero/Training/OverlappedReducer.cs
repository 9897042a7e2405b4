using System.Collections.Concurrent;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Training;

/// <summary>
/// All-reduces gradients in buckets while backward is still running (DeepSpeed's overlap_comm, DDP's buckets). The flat
/// gradient buffer is cut, from its end, into buckets of about <c>bucketElements</c> values: reverse parameter order,
/// the order backward produces them. A forward pre-hook on every layer that owns parameters wraps its input in a
/// <see cref="GradientReadySignal"/>; when a bucket's layers have all signalled, a dedicated communication thread
/// reduces it. Buckets are always launched in the same order on every rank (a bucket waits for the ones before it),
/// and whatever backward did not signal (layers whose input needs no gradient, a rank with no rows) is launched by
/// <see cref="Finish"/>. Only the last micro-batch of a step (the accumulation boundary) signals.
/// </summary>
internal sealed class OverlappedReducer : IDisposable
{
    private readonly GradientBuffers _gradients;
    private readonly (long Start, long Length)[] _buckets;
    private readonly int[] _bucketOfParameter;
    private readonly int[] _pendingInBucket;
    private readonly bool[] _parameterReady;
    private readonly object _gate = new();
    private int _nextToLaunch;

    private readonly BlockingCollection<int> _queue = new();
    private readonly Thread _thread;
    private readonly SemaphoreSlim _reduced = new(0);
    private readonly List<Action> _removeHooks = new();
    private Exception? _failure;

    public OverlappedReducer(nn.Module module, Parameter[] parameters, GradientBuffers gradients, int rank, long bucketElements)
    {
        _gradients = gradients;
        long count = parameters.Sum(p => p.numel());
        var offsets = new long[parameters.Length];
        for (int i = 1; i < parameters.Length; i++)
            offsets[i] = offsets[i - 1] + parameters[i - 1].numel();

        // Walk parameters from the last; close a bucket once it holds bucketElements values.
        var buckets = new List<(long Start, long Length)>();
        _bucketOfParameter = new int[parameters.Length];
        long end = count;
        for (int i = parameters.Length - 1; i >= 0; i--)
        {
            _bucketOfParameter[i] = buckets.Count;
            if (end - offsets[i] >= bucketElements || i == 0)
            {
                buckets.Add((offsets[i], end - offsets[i]));
                end = offsets[i];
            }
        }
        // The first bucket also carries the loss element at the very end of the buffer.
        buckets[0] = (buckets[0].Start, buckets[0].Length + 1);
        _buckets = buckets.ToArray();
        _pendingInBucket = new int[_buckets.Length];
        _parameterReady = new bool[parameters.Length];

        var index = parameters.Select((p, i) => (p, i)).ToDictionary(x => (object)x.p, x => x.i, ReferenceEqualityComparer.Instance);
        foreach (var layer in module.modules().OfType<nn.Module<Tensor, Tensor>>())
        {
            var own = layer.named_parameters(recurse: false).Select(p => index.TryGetValue(p.parameter, out int i) ? i : -1).Where(i => i >= 0).ToArray();
            if (own.Length > 0)
            {
                var hook = layer.register_forward_pre_hook((_, input) => Active && input.requires_grad ? GradientReadySignal.Wrap(input, () => Signal(own)) : input);
                _removeHooks.Add(hook.remove);
            }
        }

        _thread = new Thread(ReduceLoop) { IsBackground = true, Name = $"Microsoft.ML.Zero rank {rank} all-reduce" };
        _thread.Start();
    }

    /// <summary>Buckets launched by backward's signals rather than by <see cref="Finish"/>, since the reducer was made.</summary>
    public int LaunchedDuringBackward { get; private set; }

    /// <summary>True while the backward pass of the step's last micro-batch runs: only then do layers signal.</summary>
    public bool Active { get; set; }

    /// <summary>Clears the readiness of every parameter before a step's last micro-batch.</summary>
    public void BeginBoundary()
    {
        lock (_gate)
        {
            Array.Clear(_parameterReady);
            Array.Clear(_pendingInBucket);
            foreach (int bucket in _bucketOfParameter)
                _pendingInBucket[bucket]++;
            _nextToLaunch = 0;
        }
    }

    /// <summary>Launches the buckets backward did not signal, in order, and waits until every bucket is reduced.</summary>
    public void Finish()
    {
        Active = false;
        lock (_gate)
        {
            while (_nextToLaunch < _buckets.Length)
                _queue.Add(_nextToLaunch++);
        }
        for (int i = 0; i < _buckets.Length; i++)
            _reduced.Wait();
        if (Interlocked.Exchange(ref _failure, null) is { } failure)
            throw failure;
    }

    private void Signal(int[] parameters)
    {
        lock (_gate)
        {
            foreach (int i in parameters)
            {
                if (_parameterReady[i])
                    continue;
                _parameterReady[i] = true;
                _pendingInBucket[_bucketOfParameter[i]]--;
            }
            while (_nextToLaunch < _buckets.Length && _pendingInBucket[_nextToLaunch] == 0)
            {
                _queue.Add(_nextToLaunch++);
                LaunchedDuringBackward++;
            }
        }
    }

    private void ReduceLoop()
    {
        foreach (int bucket in _queue.GetConsumingEnumerable())
        {
            try
            {
                if (_failure is null)
                    Reduce(bucket);
            }
            catch (Exception e)
            {
                _failure = e;
            }
            _reduced.Release();
        }
    }

    private void Reduce(int bucket)
    {
        var (start, length) = _buckets[bucket];
        _gradients.Reduce(start, length);
    }

    public void Dispose()
    {
        foreach (var remove in _removeHooks)
            remove();
        _queue.CompleteAdding();
        _thread.Join();
        _queue.Dispose();
        _reduced.Dispose();
    }
}
