using System.Runtime.InteropServices;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Tensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Training;

/// <summary>
/// A module's trainable parameters as views of one flat buffer, and the fp32 weights the optimizer updates. In fp32 the
/// two are the same buffer. In mixed precision the module holds bf16/fp16 views of a 16-bit buffer, and the optimizer
/// updates fp32 master weights held in their own flat buffer (<see cref="Optimized"/> are views of it).
/// </summary>
internal sealed class FlatParameters : IDisposable
{
    private readonly nn.Module _module;
    private readonly Tensor? _modelWeights;
    private bool _restored;

    /// <param name="module">The module; in mixed precision it is converted to <paramref name="modelType"/>.</param>
    /// <param name="modelType">The model's 16-bit type in mixed precision, else null.</param>
    /// <param name="communicator">Rank 0's weights are broadcast over it, so replicas start equal, before any 16-bit copy is taken.</param>
    public FlatParameters(nn.Module module, ScalarType? modelType, ICommunicator communicator)
    {
        _module = module;
        var named = Trainable(module);
        Names = named.Select(p => p.Name).ToArray();
        Model = named.Select(p => p.Parameter).ToArray();
        Count = Model.Sum(p => p.numel());
        using (no_grad())
            Weights = cat(Model.Select(p => p.detach().to(ScalarType.Float32).flatten()).ToList()).contiguous();
        communicator.Broadcast(TensorMemory.AsSpan(Weights), root: 0);
        if (modelType is { } dtype)
        {
            Optimized = Views(Model, Weights).Select(view => new Parameter(view)).ToArray();
            module.to(dtype);
            Model = Trainable(module).Select(p => p.Parameter).ToArray();
            _modelWeights = Weights.to(dtype);
            ViewInto(Model, _modelWeights);
        }
        else
        {
            ViewInto(Model, Weights);
            Optimized = Model;
        }
    }

    /// <summary>The parameters' state-dict names, in buffer order.</summary>
    public string[] Names { get; }

    /// <summary>The module's parameters (16-bit in mixed precision).</summary>
    public Parameter[] Model { get; private set; }

    /// <summary>The fp32 parameters the optimizer updates: the master weights in mixed precision, else <see cref="Model"/>.</summary>
    public Parameter[] Optimized { get; }

    /// <summary>The flat fp32 weights <see cref="Optimized"/> are views of.</summary>
    public Tensor Weights { get; }

    /// <summary>In mixed precision, the flat 16-bit weights the module's parameters are views of.</summary>
    public Tensor? ModelWeights => _modelWeights;

    /// <summary>The number of trainable values.</summary>
    public long Count { get; }

    public bool IsMixedPrecision => _modelWeights is not null;

    /// <summary>The bytes of the module's weights and, in mixed precision, of the master weights.</summary>
    public long Bytes => TensorMemory.Bytes(Model) + (IsMixedPrecision ? TensorMemory.Bytes(Weights) : 0);

    /// <summary>
    /// Makes the module's gradients views of <paramref name="modelGradients"/>; in mixed precision, gradients accumulated
    /// in fp32 (<paramref name="accumulated"/>) become the master weights' gradients.
    /// </summary>
    public void AttachGradients(Tensor modelGradients, Tensor? accumulated)
    {
        AttachGradients(Model, modelGradients);
        if (IsMixedPrecision && accumulated is not null)
            AttachGradients(Optimized, accumulated);
    }

    /// <summary>Copies the fp32 weights into the module (its 16-bit buffer in mixed precision); a no-op in fp32.</summary>
    public void CopyToModel()
    {
        if (!IsMixedPrecision)
            return;
        using var _ = no_grad();
        if (_restored)
            for (int i = 0; i < Model.Length; i++)
                Model[i].copy_(Optimized[i]);
        else
            _modelWeights!.copy_(Weights);
    }

    /// <summary>Puts the module back in fp32 holding the master weights; a no-op in fp32.</summary>
    public void RestoreFullPrecision()
    {
        if (!IsMixedPrecision || _restored)
            return;
        foreach (var parameter in Model)
            parameter.grad = null;
        _module.to(ScalarType.Float32);
        Model = Trainable(_module).Select(p => p.Parameter).ToArray();
        _restored = true;
        CopyToModel();
    }

    /// <summary>A hash of the bits of the module's weights (as fp32): equal on every rank whose replica is the same.</summary>
    public ulong Checksum()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var flat = cat(Model.Select(p => p.detach().to(ScalarType.Float32).flatten()).ToList()).contiguous();
        return Fnv1a.Hash<uint>(MemoryMarshal.Cast<float, uint>(TensorMemory.AsSpan(flat)));
    }

    /// <summary>Sets the fp32 weights and the module to <paramref name="weights"/>, a flat fp32 tensor of <see cref="Count"/> values.</summary>
    public void Load(Tensor weights)
    {
        if (weights.numel() != Count || weights.dtype != ScalarType.Float32)
            throw new ArgumentException($"Weights of {weights.numel()} {weights.dtype} values; the model has {Count} Float32.", nameof(weights));
        using (no_grad())
            Weights.copy_(weights);
        CopyToModel();
    }

    /// <summary>Writes the fp32 weights, raw.</summary>
    public void Write(string path) => File.WriteAllBytes(path, MemoryMarshal.AsBytes(TensorMemory.AsSpan(Weights)).ToArray());

    /// <summary>Reads what <see cref="Write"/> wrote into the fp32 weights and the module.</summary>
    public void Read(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length != Count * sizeof(float))
            throw new InvalidDataException($"Checkpoint weights '{path}' hold {bytes.Length / sizeof(float)} values; the model has {Count}.");
        MemoryMarshal.Cast<byte, float>(bytes).CopyTo(TensorMemory.AsSpan(Weights));
        CopyToModel();
    }

    /// <summary>The module's trainable parameters with their state-dict names.</summary>
    public static List<(string Name, Parameter Parameter)> Trainable(nn.Module module) =>
        module.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();

    // Consecutive views into a flat buffer, shaped like the given parameters.
    private static IEnumerable<Tensor> Views(IEnumerable<Parameter> parameters, Tensor flat)
    {
        long offset = 0;
        foreach (var parameter in parameters)
        {
            yield return flat.narrow(0, offset, parameter.numel()).view(parameter.shape);
            offset += parameter.numel();
        }
    }

    // As PyTorch's p.data = view: each parameter keeps its values in the flat buffer from now on.
    private static void ViewInto(Parameter[] parameters, Tensor flat)
    {
        using var _ = no_grad();
        foreach (var (parameter, view) in parameters.Zip(Views(parameters, flat)))
            parameter.set_(view);
    }

    /// <summary>Makes each parameter's gradient the matching view of <paramref name="flat"/>.</summary>
    public static void AttachGradients(Parameter[] parameters, Tensor flat)
    {
        foreach (var (parameter, view) in parameters.Zip(Views(parameters, flat)))
            parameter.grad = view;
    }

    public void Dispose()
    {
        foreach (var parameter in Model.Concat(Optimized))
            parameter.grad = null;
        Weights.Dispose();
        _modelWeights?.Dispose();
    }
}
