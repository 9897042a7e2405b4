using Microsoft.ML.Data;
using Microsoft.ML.Zero.Config;

namespace Microsoft.ML.Zero.Data;

/// <summary>
/// The feature vector and key-typed label columns of a tabular training set: checks their types, validates every
/// row once, and reads a rank's rows into flat arrays.
/// </summary>
internal sealed class TabularColumns
{
    private readonly IDataView _data;
    private readonly DataViewSchema.Column _features;
    private readonly DataViewSchema.Column _label;

    public TabularColumns(IDataView data, ColumnOption features, ColumnOption label)
    {
        _data = data;
        _features = ColumnChecks.Find(data.Schema, features, "feature");
        _label = ColumnChecks.Find(data.Schema, label, "label");
        FeatureCount = CheckFeatureType(features, _features.Type);
        ClassCount = ColumnChecks.CheckLabelType(label, _label.Type);
    }

    public int FeatureCount { get; }

    public int ClassCount { get; }

    public DataViewSchema.Column Label => _label;

    /// <summary>Throws unless <paramref name="type"/> is a known-size vector of Single; returns its size.</summary>
    public static int CheckFeatureType(ColumnOption features, DataViewType type)
    {
        if (type is not VectorDataViewType { ItemType: NumberDataViewType itemType, Size: > 0 } vector || itemType != NumberDataViewType.Single)
            throw FeatureTypeError(features, type.ToString()!);
        // The limit a saved model's load checks, so that what trains also loads.
        if (vector.Size > ModelLimits.MaxSize)
            throw new ArgumentOutOfRangeException(features.Parameter,
                $"Feature column '{features.ColumnName}' has {vector.Size} values; expected at most {ModelLimits.MaxSize}.");
        return vector.Size;
    }

    public static ArgumentOutOfRangeException FeatureTypeError(ColumnOption features, string type) =>
        new(features.Parameter,
            $"Feature column '{features.ColumnName}' has type {type}; expected a known-size vector of Single (Vector<Single, N>). " +
            "Use mlContext.Transforms.Concatenate to build one from numeric columns.");

    /// <summary>Counts the rows, failing on the first row with a missing label or a non-finite feature.</summary>
    public long CountValidRows()
    {
        long rows = 0;
        ReadAll((row, features, label) => rows++);
        if (rows == 0)
            throw new InvalidOperationException("The training data has no rows.");
        return rows;
    }

    /// <summary>
    /// Reads the rows listed in <paramref name="rowsInOrder"/> (positions in cursor order) into <paramref name="features"/>
    /// (row-major, FeatureCount per row) and zero-based <paramref name="labels"/>, in the order listed.
    /// </summary>
    public void ReadRows(int[] rowsInOrder, long rowCount, float[] features, long[] labels)
    {
        var slotOfRow = new int[rowCount];
        Array.Fill(slotOfRow, -1);
        for (int slot = 0; slot < rowsInOrder.Length; slot++)
            slotOfRow[rowsInOrder[slot]] = slot;
        ReadAll((row, rowFeatures, label) =>
        {
            if (row >= rowCount)
                throw new InvalidOperationException($"The training data has more rows than the {rowCount} counted at the start; it must not change during training.");
            int slot = slotOfRow[row];
            if (slot < 0)
                return;
            rowFeatures.CopyTo(features.AsSpan(slot * FeatureCount, FeatureCount));
            labels[slot] = label - 1;
        });
    }

    private delegate void RowAction(long row, ReadOnlySpan<float> features, uint label);

    private void ReadAll(RowAction action)
    {
        using var cursor = _data.GetRowCursor(new[] { _features, _label });
        var getFeatures = cursor.GetGetter<VBuffer<float>>(_features);
        var getLabel = cursor.GetGetter<uint>(_label);
        var buffer = default(VBuffer<float>);
        var dense = new float[FeatureCount];
        uint label = 0;
        long row = 0;
        while (cursor.MoveNext())
        {
            getFeatures(ref buffer);
            getLabel(ref label);
            if (label == 0)
                throw new InvalidOperationException($"Label column '{_label.Name}' has a missing value at row {row}; every training row needs a label.");
            if (buffer.Length != FeatureCount)
                throw new InvalidOperationException($"Feature column '{_features.Name}' has {buffer.Length} values at row {row}; expected {FeatureCount}.");
            buffer.CopyTo(dense);
            int bad = FirstNonFinite(dense);
            if (bad >= 0)
                throw new InvalidOperationException($"Feature column '{_features.Name}' has a non-finite value ({dense[bad]}) at row {row}, slot {bad}; " +
                    "expected finite numbers. Replace missing values first (mlContext.Transforms.ReplaceMissingValues).");
            action(row, dense, label);
            row++;
        }
    }

    private static int FirstNonFinite(ReadOnlySpan<float> values)
    {
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i]))
                return i;
        return -1;
    }
}
