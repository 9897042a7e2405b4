namespace Microsoft.ML.Zero.MLNet;

/// <summary>What the scoring views need of a trained model's transformer: the model, the columns it adds, and the rows scored together.</summary>
internal interface IScoringTransformer
{
    IRowScorer Scorer { get; }

    IOutputColumns Outputs { get; }

    int ScoringBatchSize { get; }

    /// <summary>Scores <paramref name="rows"/> rows of <paramref name="batch"/> into <paramref name="outputs"/>; safe from several threads at once, each with its own batch.</summary>
    void Score(IScoringBatch batch, int rows, float[] outputs);
}
