namespace Microsoft.ML.Zero;

/// <summary>
/// How a BERT model reads a text longer than its maximum sequence length (Hugging Face tokenizers' <c>max_length</c>),
/// when it trains and when it scores.
/// </summary>
public enum ZeroLongTextHandling
{
    /// <summary>Keeps the first tokens and drops the rest (<c>truncation=True</c>); a sentence pair loses tokens longest-first.</summary>
    Truncate,

    /// <summary>
    /// Keeps the first quarter of the tokens that fit from the head of the text and the rest from its tail, dropping the
    /// middle: Sun et al. (2019), "How to Fine-Tune BERT for Text Classification?", whose head 128 + tail 382 of 510
    /// tokens this rule gives at a maximum length of 512.
    /// </summary>
    HeadAndTail,

    /// <summary>
    /// Reads the whole text in windows of the maximum length that overlap by <c>WindowStride</c> tokens (<c>stride</c>
    /// with <c>return_overflowing_tokens=True</c>); a row's class logits are the mean of its windows' logits, in training
    /// (the loss of each row is taken on that mean) and in scoring alike.
    /// </summary>
    SlidingWindows,
}
