using Microsoft.ML.Zero.Config;

namespace Microsoft.ML.Zero.Models.Bert;

/// <summary>
/// How a text longer than the tokens a row holds becomes model input (<see cref="ZeroLongTextHandling"/>, the window
/// stride and the cap on windows), and the cuts of a token list that each handling makes.
/// </summary>
internal sealed record BertLongText(ZeroLongTextHandling Handling, int WindowStride, int MaxWindowsPerRow)
{
    /// <summary>Plain truncation, the handling of models saved before the others existed.</summary>
    public static readonly BertLongText Truncate = new(ZeroLongTextHandling.Truncate, 0, 1);

    /// <summary>
    /// The largest stride windows of <paramref name="maxSequenceLength"/> tokens allow: a window holds that many less
    /// [CLS] and [SEP] (and a pair's second [SEP]) tokens of the first text, and must move on by at least one.
    /// </summary>
    public static int MaxStride(int maxSequenceLength, bool pair) => maxSequenceLength - (pair ? 3 : 2) - 1;

    /// <summary>
    /// The head and tail of <paramref name="tokens"/> that fill <paramref name="budget"/>: a quarter of it, rounded half
    /// up, from the head (128 of 510, as Sun et al. 2019) and the rest from the tail; tokens that fit are kept whole.
    /// </summary>
    public static List<int> HeadAndTail(List<int> tokens, int budget)
    {
        if (tokens.Count <= budget)
            return tokens;
        int head = (budget + 2) / 4;
        return tokens.GetRange(0, head).Concat(tokens.GetRange(tokens.Count - (budget - head), budget - head)).ToList();
    }

    /// <summary>
    /// The windows over <paramref name="tokenCount"/> tokens, as Hugging Face's tokenizers cut overflowing tokens: the
    /// first holds tokens [0, budget), each next one starts <see cref="WindowStride"/> tokens before the end of the one
    /// before, and the last ends at the text's end (it may be shorter). Past <see cref="MaxWindowsPerRow"/> windows the
    /// rest of the text is dropped. An empty text is one empty window.
    /// </summary>
    public List<(int Start, int Count)> Windows(int tokenCount, int budget)
    {
        var windows = new List<(int Start, int Count)>();
        for (int start = 0; windows.Count < MaxWindowsPerRow; start += budget - WindowStride)
        {
            int end = Math.Min(start + budget, tokenCount);
            windows.Add((start, end - start));
            if (end == tokenCount)
                break;
        }
        return windows;
    }

    /// <summary>
    /// The most tokens of a first text the windows read, <paramref name="budget"/> to a window: the first window's and
    /// <see cref="WindowStride"/> fewer for each next one (Truncate and HeadAndTail read one window's worth).
    /// </summary>
    public long TokensRead(int budget) =>
        Handling == ZeroLongTextHandling.SlidingWindows ? budget + (long)(MaxWindowsPerRow - 1) * (budget - WindowStride) : budget;

    // Format, in order: the handling, the stride, the cap on windows.
    public void Write(BinaryWriter writer)
    {
        writer.Write((int)Handling);
        writer.Write(WindowStride);
        writer.Write(MaxWindowsPerRow);
    }

    /// <summary>Reads what <see cref="Write"/> wrote, held to the bounds the options hold it to, so that what trains loads.</summary>
    public static BertLongText Read(BinaryReader reader, string source, int maxSequenceLength, bool pair)
    {
        var handling = (ZeroLongTextHandling)reader.ReadInt32();
        OptionCheck.RequireInFile(Enum.IsDefined(handling), source, "LongTextHandling", handling, string.Join(" or ", Enum.GetNames<ZeroLongTextHandling>()));
        int stride = reader.ReadInt32();
        int maxStride = handling == ZeroLongTextHandling.SlidingWindows ? MaxStride(maxSequenceLength, pair) : 0;
        OptionCheck.RequireInFile(stride >= 0 && stride <= maxStride, source, "WindowStride", stride, $"0 to {maxStride} with {handling} and MaxSequenceLength {maxSequenceLength}");
        int maxWindows = reader.ReadInt32();
        int mostWindows = handling == ZeroLongTextHandling.SlidingWindows ? ModelLimits.MaxSize : 1;
        OptionCheck.RequireInFile(maxWindows >= 1 && maxWindows <= mostWindows, source, "MaxWindowsPerRow", maxWindows,
            $"1 to {mostWindows} with {handling}");
        return new BertLongText(handling, stride, maxWindows);
    }
}
