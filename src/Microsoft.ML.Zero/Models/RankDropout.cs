using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Models;

/// <summary>
/// Dropout that draws its mask from a generator of its own. libtorch's default generator is process-wide, so
/// in-process rank threads sharing it would interleave their draws in scheduler order and runs would not repeat.
/// </summary>
internal sealed class RankDropout : nn.Module<Tensor, Tensor>
{
    private readonly double _probability;
    private readonly Generator _generator;

    public RankDropout(double probability, Generator generator) : base(nameof(RankDropout))
    {
        _probability = probability;
        _generator = generator;
    }

    public override Tensor forward(Tensor input)
    {
        // A new handle, never the input itself: Sequential disposes each layer's output once the next has run, and an
        // identity would dispose the previous layer's output under it ("Tensor invalid -- empty handle" when scoring).
        if (!training || _probability == 0)
            return input.alias();
        using var keep = rand(input.shape, dtype: input.dtype, generator: _generator).ge_(_probability);
        return input.mul(keep).div_(1 - _probability);
    }
}
