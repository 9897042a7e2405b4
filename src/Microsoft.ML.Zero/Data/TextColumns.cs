using Microsoft.ML.Data;

namespace Microsoft.ML.Zero.Data;

/// <summary>
/// One or two text columns and a label, a key (a class) or with <c>regression</c> a Single (a value): checks their
/// types, checks every row has a label, and reads a rank's rows as WordPiece ids with their labels (zero-based classes,
/// or the values).
/// </summary>
internal sealed class TextColumns
{
    private readonly IDataView _data;
    private readonly DataViewSchema.Column _first;
    private readonly DataViewSchema.Column? _second;
    private readonly DataViewSchema.Column _label;

    public TextColumns(IDataView data, ColumnOption sentence1, ColumnOption? sentence2, ColumnOption label, bool regression = false)
    {
        _data = data;
        _first = FindText(data.Schema, sentence1);
        _second = sentence2 is { } second ? FindText(data.Schema, second) : null;
        _label = ColumnChecks.Find(data.Schema, label, "label");
        _regression = regression;
        if (regression && _label.Type != NumberDataViewType.Single)
            throw ColumnChecks.RegressionLabelTypeError(label, _label.Type.ToString()!);
        ClassCount = regression ? 1 : ColumnChecks.CheckLabelType(label, _label.Type);
    }

    private readonly bool _regression;

    /// <summary>The classes of a key label; 1 (one output) for a regression's.</summary>
    public int ClassCount { get; }

    public DataViewSchema.Column Label => _label;

    private static DataViewSchema.Column FindText(DataViewSchema schema, ColumnOption text)
    {
        var column = ColumnChecks.Find(schema, text, "text");
        if (column.Type is not TextDataViewType)
            throw new ArgumentOutOfRangeException(text.Parameter, $"Text column '{text.ColumnName}' has type {column.Type}; expected String (text).");
        return column;
    }

    /// <summary>Counts the rows, failing on the first row with a missing label; empty text is valid.</summary>
    public long CountValidRows()
    {
        long rows = 0;
        ReadAll((row, first, second, label) => rows++);
        if (rows == 0)
            throw new InvalidOperationException("The training data has no rows.");
        return rows;
    }

    /// <summary>
    /// Encodes (<paramref name="encode"/>: first text, second text or null) the rows listed in <paramref name="rowsInOrder"/>
    /// (positions in cursor order), in that order.
    /// </summary>
    public (T[] Encoded, float[] Labels) ReadRows<T>(int[] rowsInOrder, long rowCount, Func<string, string?, T> encode)
    {
        var slotOfRow = new int[rowCount];
        Array.Fill(slotOfRow, -1);
        for (int slot = 0; slot < rowsInOrder.Length; slot++)
            slotOfRow[rowsInOrder[slot]] = slot;
        var encoded = new T[rowsInOrder.Length];
        var labels = new float[rowsInOrder.Length];
        ReadAll((row, first, second, label) =>
        {
            if (row >= rowCount)
                throw new InvalidOperationException($"The training data has more rows than the {rowCount} counted at the start; it must not change during training.");
            int slot = slotOfRow[row];
            if (slot < 0)
                return;
            try
            {
                encoded[slot] = encode(first.ToString(), _second is null ? null : second.ToString());
            }
            catch (ArgumentException exception)
            {
                // The encoder refuses text it cannot fit (a pair's second text too long for the long-text handling).
                throw new InvalidOperationException($"Row {row} of the training data: {exception.Message}", exception);
            }
            labels[slot] = label;
        });
        return (encoded, labels);
    }

    /// <summary>
    /// Every row's token count under <paramref name="countTokens"/> (first text, second text or null), by row position:
    /// the lengths batches are grouped by.
    /// </summary>
    public int[] TokenCounts(long rowCount, Func<string, string?, int> countTokens) =>
        ReadRows(Enumerable.Range(0, checked((int)rowCount)).ToArray(), rowCount, countTokens).Encoded;

    // The label as training reads it: the zero-based class of a key (exact in a float up to 2^24 classes), or the value.
    private delegate void RowAction(long row, ReadOnlyMemory<char> first, ReadOnlyMemory<char> second, float label);

    private void ReadAll(RowAction action)
    {
        var columns = new List<DataViewSchema.Column> { _first, _label };
        if (_second is { } second)
            columns.Add(second);
        using var cursor = _data.GetRowCursor(columns);
        var getFirst = cursor.GetGetter<ReadOnlyMemory<char>>(_first);
        var getSecond = _second is { } column ? cursor.GetGetter<ReadOnlyMemory<char>>(column) : null;
        var getKey = _regression ? null : cursor.GetGetter<uint>(_label);
        var getValue = _regression ? cursor.GetGetter<float>(_label) : null;
        ReadOnlyMemory<char> first = default, secondText = default;
        uint key = 0;
        float value = 0;
        long row = 0;
        while (cursor.MoveNext())
        {
            getFirst(ref first);
            getSecond?.Invoke(ref secondText);
            getKey?.Invoke(ref key);
            getValue?.Invoke(ref value);
            // Empty text is valid (an e-mail without a subject): it encodes as [CLS] [SEP], as Hugging Face's tokenizers
            // do. ML.NET text has no missing value; a key label does (0), a Single NaN or infinity, and a row without a label cannot be learned.
            if (_regression ? !float.IsFinite(value) : key == 0)
                throw new InvalidOperationException($"Label column '{_label.Name}' has a missing value at row {row}" +
                    (_regression ? $" ({value}); every training row needs a finite label." : "; every training row needs a label."));
            action(row, first, secondText, _regression ? value : key - 1);
            row++;
        }
    }
}
