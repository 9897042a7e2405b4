using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.SampleData;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.Benchmarks;

/// <summary>The MiniLM checkpoint and a fixed batch of encoded sentiment sentences, the input of the step benchmarks.</summary>
internal sealed record SentimentBatch(BertCheckpoint Checkpoint, BertTextEncoder Encoder, (int[] Ids, int[] TokenTypes)[] Encoded, long[] Labels)
{
    public static SentimentBatch Load(int rows, int maxSequenceLength, int skip = 0)
    {
        TorchRuntime.EnsureLoaded();
        var checkpoint = BertCheckpoint.Open(MiniLm.Directory());
        var encoder = new BertTextEncoder(File.ReadAllBytes(checkpoint.VocabPath), checkpoint.LowerCase, maxSequenceLength);
        var sentences = SentimentData.All().Skip(skip).Take(rows).ToArray();
        return new SentimentBatch(checkpoint, encoder, sentences.Select(r => encoder.Encode(r.Text, null)).ToArray(),
            sentences.Select(r => long.Parse(r.Label)).ToArray());
    }

    /// <summary>The padded tensors of the whole batch.</summary>
    public BertBatch Collate() => BertCollator.Collate(Encoded, 0, Encoded.Length, Encoder.PaddingId);
}
