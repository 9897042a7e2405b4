namespace Microsoft.ML.Zero;

/// <summary>The entry point to Microsoft.ML.Zero's trainers, reached through <c>mlContext.Zero()</c>.</summary>
public sealed class ZeroCatalog
{
    private readonly MLContext _mlContext;

    internal ZeroCatalog(MLContext mlContext) => _mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));

    /// <summary>
    /// A data-parallel (ZeRO stage 0) MLP classifier over a numeric feature vector and a key-typed label.
    /// </summary>
    public ZeroTrainer Trainer(ZeroTrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return new ZeroTrainer(_mlContext, options);
    }
}
