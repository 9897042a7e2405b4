using Microsoft.ML.Zero.Distributed;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Training;

/// <summary>
/// One rank's side of stage-0 data parallelism: a full replica whose gradients live in one flat buffer, averaged over
/// all ranks by a single all-reduce before an optimizer step that every rank takes identically.
/// </summary>
internal sealed class DataParallelEngine : IDisposable
{
    private readonly ICommunicator _communicator;
    private readonly Parameter[] _parameters;
    private readonly optim.Optimizer _optimizer;

    // Every parameter's .grad is a view into this buffer, so backward writes straight into what is all-reduced.
    // One extra element at the end carries the rank's share of the step loss through the same all-reduce.
    private readonly Tensor _flatGradients;
    private readonly long _gradientCount;

    public DataParallelEngine(nn.Module module, ICommunicator communicator, OptimizerSettings optimizer)
    {
        _communicator = communicator;
        var named = module.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();
        _parameters = named.Select(p => p.parameter).ToArray();
        _gradientCount = _parameters.Sum(p => p.numel());
        _flatGradients = zeros(_gradientCount + 1);
        long offset = 0;
        foreach (var parameter in _parameters)
        {
            parameter.grad = _flatGradients.narrow(0, offset, parameter.numel()).view(parameter.shape);
            offset += parameter.numel();
        }
        BroadcastParameters(root: 0);
        _optimizer = optimizer.Create(named);
    }

    /// <summary>The number of optimizer steps taken.</summary>
    public long GlobalStep { get; private set; }

    /// <summary>
    /// Runs one optimizer step. <paramref name="localLossSum"/> returns the summed (not averaged) loss of this rank's
    /// micro-batch, or null when this rank has no rows in the step; dividing by <paramref name="globalRows"/>, the rows
    /// over all ranks, and summing gradients over ranks gives exactly the mean-loss gradient of the global batch.
    /// Returns the global batch's mean loss.
    /// </summary>
    public float Step(Func<Tensor?> localLossSum, int globalRows)
    {
        using var scope = NewDisposeScope();
        _flatGradients.zero_();
        var lossSum = localLossSum();
        if (lossSum is not null)
        {
            var loss = lossSum / globalRows;
            loss.backward();
            _flatGradients[_gradientCount] = loss.detach();
        }
        _communicator.AllReduce(TensorMemory.AsSpan(_flatGradients), ReduceOperation.Sum);
        using (no_grad())
            _optimizer.step();
        GlobalStep++;
        return _flatGradients[_gradientCount].item<float>();
    }

    /// <summary>Copies rank <paramref name="root"/>'s weights to every rank, so replicas start equal.</summary>
    public void BroadcastParameters(int root)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var flat = cat(_parameters.Select(p => p.detach().flatten()).ToList()).contiguous();
        _communicator.Broadcast(TensorMemory.AsSpan(flat), root);
        long offset = 0;
        foreach (var parameter in _parameters)
        {
            parameter.copy_(flat.narrow(0, offset, parameter.numel()).view(parameter.shape));
            offset += parameter.numel();
        }
    }

    public void Dispose()
    {
        foreach (var parameter in _parameters)
            parameter.grad = null;
        _optimizer.Dispose();
        _flatGradients.Dispose();
    }
}
