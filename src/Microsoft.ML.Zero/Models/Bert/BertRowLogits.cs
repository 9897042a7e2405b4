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
    /// The logits [count, classes] of rows [start, start + count): their windows forward as one batch padded to the
    /// longest window, or, with <paramref name="windowsPerForward"/>, in batches of at most that many windows, which
    /// bounds the memory of scoring (training keeps every window's activations for backward either way).
    /// </summary>
    public static Tensor Compute(BertClassifier model, IReadOnlyList<(int[] Ids, int[] TokenTypes)[]> rows, int start, int count, int paddingId,
        int windowsPerForward = int.MaxValue)
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
        var chunks = new List<Tensor>();
        for (int first = 0; first < windows.Count; first += windowsPerForward)
            chunks.Add(model.forward(BertCollator.Collate(windows, first, Math.Min(windowsPerForward, windows.Count - first), paddingId)));
        // The mean is taken in fp32, whatever the precision the model computes in.
        var logits = (chunks.Count == 1 ? chunks[0] : cat(chunks, 0)).to(ScalarType.Float32);
        if (windows.Count == count)
            return logits;
        var sums = zeros(count, model.ClassCount).index_add(0, tensor(rowOfWindow.ToArray()), logits, 1);
        return sums.div(tensor(windowsOfRow).unsqueeze(1));
    }
}
