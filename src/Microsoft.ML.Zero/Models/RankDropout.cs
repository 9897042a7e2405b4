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
        if (!training || _probability == 0)
            return input;
        using var keep = rand(input.shape, dtype: input.dtype, generator: _generator).ge_(_probability);
        return input.mul(keep).div_(1 - _probability);
    }
}
