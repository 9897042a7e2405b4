using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Models.Bert;

/// <summary>
/// Class logits of encoded rows, in fp32, each row given as its windows (<see cref="BertTextEncoder.EncodeWindows"/>):
/// a row of one window gets that window's logits, a row of several the mean of theirs. Training (the loss of each row)
/// and scoring (the softmax of each row) both take their logits from here, so the two combine windows alike.
/// </summary>
internal static class BertRowLogits
{
    /// <summary>
    /// The logits [count, classes] of rows [start, start + count): all their windows forward as one batch, padded to the
    /// longest window.
    /// </summary>
    public static Tensor Compute(BertClassifier model, IReadOnlyList<(int[] Ids, int[] TokenTypes)[]> rows, int start, int count, int paddingId)
    {
        var windows = new List<(int[] Ids, int[] TokenTypes)>(count);
        var rowOfWindow = new List<long>(count);
        var windowsOfRow = new float[count];
        for (int row = 0; row < count; row++)
        {
            foreach (var window in rows[start + row])
            {
                windows.Add(window);
                rowOfWindow.Add(row);
            }
            windowsOfRow[row] = rows[start + row].Length;
        }
        // The mean is taken in fp32, whatever the precision the model computes in.
        var logits = model.forward(BertCollator.Collate(windows, 0, windows.Count, paddingId)).to(ScalarType.Float32);
        if (windows.Count == count)
            return logits;
        var sums = zeros(count, model.ClassCount).index_add(0, tensor(rowOfWindow.ToArray()), logits, 1);
        return sums.div(tensor(windowsOfRow).unsqueeze(1));
    }
}
