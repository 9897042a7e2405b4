using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Models.Bert;
namespace Microsoft.ML.Zero;

/// <summary>
/// Options of <see cref="ZeroNamedEntityRecognitionTrainer"/>: fine-tunes a pretrained BERT (a local Hugging Face folder)
/// to tag every word of a sentence (Hugging Face's BertForTokenClassification), data-parallel on
/// <see cref="ZeroTrainingOptions.WorldSize"/> ranks. Names follow Microsoft.ML.TorchSharp's NerTrainer.Options: the
/// sentence column Sentence, split into words on spaces; the label Label, a vector of keys with one key per word; the
/// output PredictedLabel, a vector of keys with one key per word.
/// <list type="bullet">
/// <item>Each word is tokenized on its own; its first WordPiece sub-token carries its label, and the loss (cross-entropy
/// over those tokens) ignores the other sub-tokens, [CLS], [SEP] and padding. A word whose label key is missing (0) is left out of the loss.</item>
/// <item>A sentence longer than <see cref="ZeroBertOptions.MaxSequenceLength"/> tokens is read as
/// <see cref="ZeroBertOptions.LongTextHandling"/> says. <see cref="ZeroLongTextHandling.Truncate"/> (the default): the
/// words whose first sub-token falls past it are not trained on, and the model predicts the missing key 0 for them, so
/// PredictedLabel still holds one key per word (MapKeyToValue gives them the empty string).
/// <see cref="ZeroLongTextHandling.SlidingWindows"/>: the sentence's tokens are cut into windows overlapping by
/// <see cref="ZeroBertOptions.WindowStride"/> tokens, every window trains, and each word is tagged from the window where
/// it has the most context on its nearer side; only words past <see cref="ZeroBertOptions.MaxWindowsPerRow"/> windows
/// get the missing key. <see cref="ZeroLongTextHandling.HeadAndTail"/> is refused: it would leave the middle words untagged.</item>
/// <item>An empty sentence has no words: its label and PredictedLabel are empty.</item>
/// </list>
/// The best model is picked by token-level <see cref="ZeroMetric.Accuracy"/> unless <see cref="ZeroTrainingOptions.MetricForBestModel"/>
/// says <see cref="ZeroMetric.MacroF1"/> (macro F1 over the tags). Score and Sentence2ColumnName are not used.
/// </summary>
public sealed class ZeroNamedEntityRecognitionOptions : ZeroBertOptions
{
    /// <summary>Options with Microsoft.ML.TorchSharp's column names: Sentence, Label, PredictedLabel.</summary>
    public ZeroNamedEntityRecognitionOptions()
    {
        Sentence1ColumnName = "Sentence";
    }

    internal void Validate()
    {
        ValidateBertOptions();
        Require(Sentence2ColumnName is null, nameof(Sentence2ColumnName), Sentence2ColumnName ?? "null", "null: the model tags the words of one sentence");
        Require(MetricForBestModel is ZeroMetric.Accuracy or ZeroMetric.MacroF1, nameof(MetricForBestModel), MetricForBestModel,
            "Accuracy or MacroF1 (over the words of the validation set)");
        Require(LongTextHandling != ZeroLongTextHandling.HeadAndTail, nameof(LongTextHandling), LongTextHandling,
            "Truncate or SlidingWindows: HeadAndTail would leave the middle words of a long sentence untagged");
        Require(TokenClassificationScorer.ReadsWords(LongText, MaxSequenceLength, out string expected), nameof(MaxWindowsPerRow), MaxWindowsPerRow, expected);
    }
}
