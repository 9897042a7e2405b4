using Microsoft.ML.Data;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>The model side of a <see cref="ZeroTransformer"/>: which input columns it reads and how it scores rows.</summary>
internal interface IRowScorer : IDisposable
{
    /// <summary>Names the model in a saved zip, to pick the loader.</summary>
    string Kind { get; }

    int ClassCount { get; }

    /// <summary>Finds the input columns the model reads in <paramref name="schema"/>, or throws naming the one that is wrong.</summary>
    DataViewSchema.Column[] CheckInputs(DataViewSchema schema);

    /// <summary>
    /// How many scoring batches of rows a cursor reads before it scores them, so that the scorer can regroup them
    /// (rows of similar length together); 1: each batch is scored as read.
    /// </summary>
    int BatchesReadTogether { get; }

    /// <summary>
    /// A batch that reads up to <paramref name="capacity"/> rows from <paramref name="row"/> (its input columns active)
    /// and scores them, at most <paramref name="forwardRows"/> in one forward.
    /// </summary>
    IScoringBatch CreateBatch(DataViewRow row, int capacity, int forwardRows);

    /// <summary>Writes what loading needs after the kind, into the model's own stream and files.</summary>
    void Save(ModelSaveContext ctx);
}

/// <summary>Rows gathered for scoring together.</summary>
internal interface IScoringBatch
{
    /// <summary>Copies the current row of the source into slot <paramref name="slot"/>.</summary>
    void ReadRow(int slot);

    /// <summary>Writes class probabilities of the first <paramref name="rows"/> slots, row-major, into <paramref name="probabilities"/>.</summary>
    void Score(int rows, float[] probabilities);
}
