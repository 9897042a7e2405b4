namespace Microsoft.ML.Zero.Data;

/// <summary>
/// Hugging Face's <c>group_by_length</c> (the megabatches of its LengthGroupedSampler) over the shard plan's batches:
/// the epoch's shuffled rows are taken a window of several batches at a time, each window is sorted by length (longest
/// first) and cut into batches, and the batches are shuffled. Each batch then holds rows of about the same length, so
/// padding to its longest row adds few tokens, while which rows meet in a batch still changes from epoch to epoch.
/// The order is a pure function of the shuffled rows, the lengths and the batch shuffle, so a resumed run rebuilds it.
/// </summary>
internal sealed class LengthGroupedOrder
{
    /// <summary>Hugging Face's megabatch: 50 batches.</summary>
    public const int DefaultWindowBatches = 50;

    /// <param name="rowLengths">Each row's length (its token count), by row position in the input.</param>
    /// <param name="windowBatches">Batches sorted together: larger windows pad less, smaller ones mix rows of more lengths.</param>
    public LengthGroupedOrder(int[] rowLengths, int windowBatches)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(windowBatches, 1);
        RowLengths = rowLengths;
        WindowBatches = windowBatches;
    }

    public int[] RowLengths { get; }

    public int WindowBatches { get; }

    /// <summary>
    /// The window actually sorted, in batches: as LengthGroupedSampler, at most a quarter of the epoch's batches, so that
    /// even a small data set has several windows and a row meets other rows each epoch.
    /// </summary>
    public int WindowFor(int rowCount, int batchRows) => Math.Clamp(rowCount / batchRows / 4, 1, WindowBatches);

    /// <summary>
    /// <paramref name="shuffled"/> (row positions in a random order) regrouped into batches of <paramref name="batchRows"/>
    /// rows of about the same length, the full batches in the order <paramref name="batchShuffle"/> draws. A short batch
    /// (the rows left over by the full ones) stays last, where the plan expects an epoch's partial step.
    /// </summary>
    public int[] Arrange(int[] shuffled, int batchRows, Random batchShuffle)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchRows, 1);
        long windowRows = (long)WindowFor(shuffled.Length, batchRows) * batchRows;
        var sorted = new int[shuffled.Length];
        for (long start = 0; start < shuffled.Length; start += windowRows)
        {
            int count = (int)Math.Min(windowRows, shuffled.Length - start);
            // A stable sort: rows of equal length keep their shuffled order.
            var window = new ArraySegment<int>(shuffled, (int)start, count).OrderByDescending(row => RowLengths[row]);
            int at = (int)start;
            foreach (int row in window)
                sorted[at++] = row;
        }

        int fullBatches = shuffled.Length / batchRows;
        var batchOrder = Enumerable.Range(0, fullBatches).ToArray();
        batchShuffle.Shuffle(batchOrder);
        var arranged = new int[shuffled.Length];
        for (int batch = 0; batch < fullBatches; batch++)
            Array.Copy(sorted, (long)batchOrder[batch] * batchRows, arranged, (long)batch * batchRows, batchRows);
        long rest = (long)fullBatches * batchRows;
        Array.Copy(sorted, rest, arranged, rest, shuffled.Length - rest);
        return arranged;
    }

    /// <summary>
    /// The tokens of <paramref name="rankRows"/> (each a rank's rows in training order) cut into micro-batches of
    /// <paramref name="microBatchSize"/> rows and padded to each micro-batch's longest row, as the collator pads: all of
    /// them (real and padding) and the real ones, by <paramref name="lengths"/>.
    /// </summary>
    public static (long All, long Real) PaddedTokens(IReadOnlyList<int> lengths, IEnumerable<int[]> rankRows, int microBatchSize)
    {
        long padded = 0, real = 0;
        foreach (int[] rows in rankRows)
        {
            for (long start = 0; start < rows.Length; start += microBatchSize)
            {
                int count = (int)Math.Min(microBatchSize, rows.Length - start), longest = 0;
                for (int i = 0; i < count; i++)
                {
                    int length = lengths[rows[start + i]];
                    longest = Math.Max(longest, length);
                    real += length;
                }
                padded += (long)longest * count;
            }
        }
        return (padded, real);
    }

    /// <summary>Padding tokens as a share of all tokens, for <see cref="PaddedTokens"/> of this grouping's row lengths.</summary>
    public double PaddingShare(IEnumerable<int[]> rankRows, int microBatchSize)
    {
        var (all, real) = PaddedTokens(RowLengths, rankRows, microBatchSize);
        return all == 0 ? 0 : (double)(all - real) / all;
    }
}
