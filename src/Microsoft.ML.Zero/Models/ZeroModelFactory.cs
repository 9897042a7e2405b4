using static TorchSharp.torch;

namespace Microsoft.ML.Zero;

/// <summary>
/// A user-defined TorchSharp classifier for <see cref="ZeroTrainer"/> (<see cref="ZeroTrainerOptions.ModelFactory"/>):
/// it builds the module, turns the feature column's rows into the module's input, and turns the module's output into
/// a loss and class probabilities. A saved model records this type's name and rebuilds the module with it when loaded,
/// so the type needs a public parameterless constructor and must be loadable (its assembly referenced) where the model
/// is loaded.
/// </summary>
public abstract class ZeroModelFactory
{
    /// <summary>
    /// Builds the module: from a batch of inputs (what <see cref="BuildInput"/> returns) to an output per row
    /// (class logits by default). Called once per rank; rank 0's weights are copied to the others.
    /// </summary>
    public abstract nn.Module<Tensor, Tensor> CreateModel(int featureCount, int classCount);

    /// <summary>
    /// Turns the feature column's values of a batch, an fp32 tensor [rows, featureCount], into the module's input, for
    /// example reshaped to [rows, channels, length]. By default the values as they are.
    /// </summary>
    public virtual Tensor BuildInput(Tensor features) => features;

    /// <summary>
    /// The batch's summed loss from the module's output and the zero-based labels [rows]; by default cross-entropy over
    /// logits. The trainer's ClassWeights and LabelSmoothingFactor apply to that default only: with a factory that
    /// overrides this method they are an error, and the override applies its own weighting.
    /// </summary>
    public virtual Tensor LossSum(Tensor output, Tensor labels) =>
        nn.functional.cross_entropy(output.to(ScalarType.Float32), labels, reduction: nn.Reduction.Sum);

    /// <summary>Whether this factory's type replaces the default <see cref="LossSum"/>.</summary>
    internal bool OverridesLossSum =>
        GetType().GetMethod(nameof(LossSum), new[] { typeof(Tensor), typeof(Tensor) })!.DeclaringType != typeof(ZeroModelFactory);

    /// <summary>The prediction head: class probabilities [rows, classCount] from the module's output; by default a softmax over logits.</summary>
    public virtual Tensor Scores(Tensor output) => nn.functional.softmax(output.to(ScalarType.Float32), dim: 1);

    /// <summary>The name a saved model records: the type's full name and its assembly's simple name.</summary>
    internal static string TypeName(Type type) => $"{type.FullName}, {type.Assembly.GetName().Name}";

    /// <summary>
    /// Throws unless <paramref name="type"/> can be rebuilt when a saved model is loaded; <paramref name="what"/> names
    /// where the type came from, and <paramref name="parameter"/> is the rejected argument.
    /// </summary>
    internal static void RequireLoadable(Type type, string what, string? parameter)
    {
        if (type.IsAbstract || type.GetConstructor(Type.EmptyTypes) is not { IsPublic: true })
            throw new ArgumentException(
                $"{what} is a {type.FullName}, which has no public parameterless constructor; loading a saved model " +
                "creates the factory again from its type, so it needs one.", parameter);
    }

    /// <summary>Creates the factory a saved model names; a clear error when its type cannot be found or built.</summary>
    internal static ZeroModelFactory Create(string typeName)
    {
        var type = Type.GetType(typeName, throwOnError: false)
            ?? throw new InvalidOperationException(
                $"The model was trained with the model factory '{typeName}', which cannot be found. Reference the assembly that " +
                $"defines it ('{typeName[(typeName.LastIndexOf(',') + 1)..].Trim()}') in the program that loads the model.");
        if (!typeof(ZeroModelFactory).IsAssignableFrom(type))
            throw new InvalidOperationException($"The model's factory type '{typeName}' is not a {nameof(ZeroModelFactory)}.");
        RequireLoadable(type, "The saved model's factory", null);
        return (ZeroModelFactory)Activator.CreateInstance(type)!;
    }
}
