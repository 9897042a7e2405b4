using Microsoft.ML.Data;

namespace Microsoft.ML.Zero.Data;

/// <summary>The rows of each class in a key-typed label column, for class weights drawn from the training set.</summary>
internal static class LabelCounts
{
    /// <summary>Rows per class, in key order (key k is class k - 1); rows without a label (key 0) are not counted.</summary>
    public static long[] Count(IDataView data, DataViewSchema.Column label, int classCount)
    {
        var counts = new long[classCount];
        using var cursor = data.GetRowCursor(new[] { label });
        var getLabel = cursor.GetGetter<uint>(label);
        uint key = 0;
        while (cursor.MoveNext())
        {
            getLabel(ref key);
            if (key is > 0 && key <= classCount)
                counts[key - 1]++;
        }
        return counts;
    }
}
