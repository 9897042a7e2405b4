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
/// <see cref="FinishBackward"/>. Only the last micro-batch of a step (the accumulation boundary) signals.
/// </summary>
internal sealed class OverlappedReducer : IDisposable
{
    private readonly GradientBuffers _gradients;
    private readonly (long Start, long Length)[] _buckets;
    private readonly int[] _bucketOfParameter;
    private readonly int[] _pendingInBucket;
    private readonly bool[] _parameterReady;
    // Per parameter, in the boundary's forward: how many calls of its layers will signal, and whether a call whose
    // input needs no gradient (it never signals) also adds to it. A parameter is complete only after every call's
    // gradient: a layer called twice, or a weight shared by two layers, must not let its bucket leave at the first.
    private readonly int[] _callsToSignal;
    private readonly bool[] _unsignalledCall;
    private readonly object _gate = new();
    private int _nextToLaunch;

    private readonly BlockingCollection<int> _queue = new();
    private readonly Thread _thread;
    private readonly SemaphoreSlim _reduced = new(0);
    private readonly List<Action> _removeHooks = new();
    private Exception? _failure;

    // True while the backward pass of the step's last micro-batch runs: only then do layers signal.
    private volatile bool _active;

    public OverlappedReducer(nn.Module module, Parameter[] parameters, GradientBuffers gradients, int rank, long bucketElements)
    {
        _gradients = gradients;
        (_buckets, _bucketOfParameter) = AssignBuckets(parameters.Select(p => p.numel()).ToArray(), bucketElements);
        _pendingInBucket = new int[_buckets.Length];
        _parameterReady = new bool[parameters.Length];
        _callsToSignal = new int[parameters.Length];
        _unsignalledCall = new bool[parameters.Length];

        var index = parameters.Select((p, i) => (p, i)).ToDictionary(x => (object)x.p, x => x.i, ReferenceEqualityComparer.Instance);
        foreach (var layer in module.modules().OfType<nn.Module<Tensor, Tensor>>())
        {
            var own = layer.named_parameters(recurse: false).Select(p => index.TryGetValue(p.parameter, out int i) ? i : -1).Where(i => i >= 0).ToArray();
            if (own.Length > 0)
            {
                var hook = layer.register_forward_pre_hook((_, input) => _active ? Called(own, input) : input);
                _removeHooks.Add(hook.remove);
            }
        }

        _thread = new Thread(ReduceLoop) { IsBackground = true, Name = $"Microsoft.ML.Zero rank {rank} all-reduce" };
        _thread.Start();
    }

    /// <summary>
    /// Cuts values [0, sum of <paramref name="sizes"/>) into buckets from the end (reverse parameter order, the order
    /// backward produces them): a bucket closes once it holds <paramref name="bucketElements"/> values (a parameter is
    /// never split, so one larger than that closes the bucket it joins), and the first parameter closes the last bucket. The first bucket also
    /// carries the loss element that follows the values. Returns each bucket's range and each parameter's bucket.
    /// </summary>
    public static ((long Start, long Length)[] Buckets, int[] BucketOfParameter) AssignBuckets(long[] sizes, long bucketElements)
    {
        var offsets = new long[sizes.Length];
        for (int i = 1; i < sizes.Length; i++)
            offsets[i] = offsets[i - 1] + sizes[i - 1];
        var buckets = new List<(long Start, long Length)>();
        var bucketOfParameter = new int[sizes.Length];
        long end = sizes.Sum();
        for (int i = sizes.Length - 1; i >= 0; i--)
        {
            bucketOfParameter[i] = buckets.Count;
            if (end - offsets[i] >= bucketElements || i == 0)
            {
                buckets.Add((offsets[i], end - offsets[i]));
                end = offsets[i];
            }
        }
        buckets[0] = (buckets[0].Start, buckets[0].Length + 1);
        return (buckets.ToArray(), bucketOfParameter);
    }

    /// <summary>Buckets launched by backward's signals rather than by <see cref="FinishBackward"/>, since the reducer was made.</summary>
    public int LaunchedDuringBackward { get; private set; }

    /// <summary>Before a step's last micro-batch: clears every parameter's readiness and lets layers signal during its backward.</summary>
    public void BeginBoundary()
    {
        lock (_gate)
        {
            Array.Clear(_parameterReady);
            Array.Clear(_callsToSignal);
            Array.Clear(_unsignalledCall);
            Array.Clear(_pendingInBucket);
            foreach (int bucket in _bucketOfParameter)
                _pendingInBucket[bucket]++;
            _nextToLaunch = 0;
        }
        _active = true;
    }

    /// <summary>Launches the buckets backward did not signal, in order, and waits until every bucket is reduced.</summary>
    public void FinishBackward()
    {
        _active = false;
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

    // A layer with these parameters is called in the boundary's forward: its input is wrapped to signal in backward.
    private Tensor Called(int[] parameters, Tensor input)
    {
        lock (_gate)
        {
            foreach (int i in parameters)
            {
                if (input.requires_grad)
                    _callsToSignal[i]++;
                else
                    _unsignalledCall[i] = true;
            }
        }
        return input.requires_grad ? GradientReadySignal.Wrap(input, () => MarkReady(parameters)) : input;
    }

    // A call's input gradient arrived, so that call's share of its parameters' gradients is in: once every call's is,
    // launch the buckets that are now complete, in order.
    private void MarkReady(int[] parameters)
    {
        lock (_gate)
        {
            foreach (int i in parameters)
            {
                if (_parameterReady[i] || --_callsToSignal[i] > 0 || _unsignalledCall[i])
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
