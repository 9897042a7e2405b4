namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// A trained model's lifetime across threads. Scoring and saving hold it shared, disposing exclusively: a model disposed
/// while other threads score (one PredictionEngine per thread, each disposing the model it was made from by default)
/// waits for their forwards to end instead of freeing weights under them, and every later use fails with a message
/// naming the fix.
/// </summary>
internal sealed class ModelLifetime
{
    private readonly ReaderWriterLockSlim _lock = new();
    private readonly string _owner;
    private readonly string _kind;
    private bool _disposed;

    /// <param name="owner">The transformer's type name, for the error.</param>
    /// <param name="kind">The model's kind ("BERT", "MLP"), for the error.</param>
    public ModelLifetime(string owner, string kind)
    {
        _owner = owner;
        _kind = kind;
    }

    /// <summary>Runs <paramref name="use"/> unless the model is disposed; safe from several threads at once.</summary>
    public void Use(Action use)
    {
        _lock.EnterReadLock();
        try
        {
            if (_disposed)
                throw new ObjectDisposedException(_owner, $"The {_kind} model was disposed, so it can no longer score or be saved. " +
                    "A PredictionEngine disposes the model it was created from when it is disposed: engines that share one model (one per thread) " +
                    "must be created with new PredictionEngineOptions { OwnsTransformer = false }, and the model disposed once, after the last of them.");
            use();
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    /// <summary>Disposes <paramref name="model"/> once, after scoring under way has ended; later calls do nothing.</summary>
    public void Dispose(IDisposable model)
    {
        _lock.EnterWriteLock();
        try
        {
            if (!_disposed)
                model.Dispose();
            _disposed = true;
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }
}
