using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Models.Bert;

/// <summary>Pads encoded rows to the longest row of their batch (not to the maximum length) and builds the tensors.</summary>
internal static class BertCollator
{
    public static BertBatch Collate(IReadOnlyList<(int[] Ids, int[] TokenTypes)> rows, int start, int count, int paddingId)
    {
        int longest = 0;
        for (int i = start; i < start + count; i++)
            longest = Math.Max(longest, rows[i].Ids.Length);
        var ids = new long[count * longest];
        var types = new long[count * longest];
        var mask = new bool[count * longest];
        Array.Fill(ids, paddingId);
        for (int row = 0; row < count; row++)
        {
            var (rowIds, rowTypes) = rows[start + row];
            for (int t = 0; t < rowIds.Length; t++)
            {
                ids[row * longest + t] = rowIds[t];
                types[row * longest + t] = rowTypes[t];
                mask[row * longest + t] = true;
            }
        }
        var shape = new long[] { count, longest };
        return new BertBatch(tensor(ids, shape), tensor(types, shape), tensor(mask, shape));
    }
}
