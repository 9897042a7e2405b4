namespace Microsoft.ML.Zero.MLNet;

/// <summary>A validation set cut into contiguous shares, one per rank, in row order.</summary>
internal sealed class ValidationShares
{
    private readonly MLContext _mlContext;
    private long? _rowCount;

    public ValidationShares(MLContext mlContext, IDataView data)
    {
        _mlContext = mlContext;
        Data = data;
    }

    public IDataView Data { get; }

    /// <summary>The rows in the whole set, counted once.</summary>
    public long RowCount => _rowCount ??= Data.GetRowCount() ?? CountRows(Data);

    /// <summary>Rank <paramref name="rank"/>'s share of <paramref name="worldSize"/> and the position of its first row; null when it is empty.</summary>
    public (IDataView? Share, long Start) Of(int rank, int worldSize)
    {
        long count = RowCount;
        long start = count * rank / worldSize, end = count * (rank + 1) / worldSize;
        if (end == start)
            return (null, start);
        // ML.NET's SkipRows and TakeRows refuse a count of 0.
        return (_mlContext.Data.TakeRows(start == 0 ? Data : _mlContext.Data.SkipRows(Data, start), end - start), start);
    }

    private static long CountRows(IDataView data)
    {
        long rows = 0;
        using var cursor = data.GetRowCursor(Array.Empty<DataViewSchema.Column>());
        while (cursor.MoveNext())
            rows++;
        return rows;
    }
}
