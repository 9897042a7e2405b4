namespace Microsoft.ML.Zero.Tests;

/// <summary>The messages Microsoft.ML.Zero's trainers log through an MLContext, collected for assertions.</summary>
internal static class TrainerLog
{
    public static List<string> Capture(MLContext mlContext)
    {
        var lines = new List<string>();
        mlContext.Log += (_, e) =>
        {
            if (e.Source.StartsWith(nameof(ZeroTrainer), StringComparison.Ordinal) || e.Source.StartsWith(nameof(ZeroTextClassificationTrainer), StringComparison.Ordinal) ||
                e.Source.StartsWith(nameof(ZeroSentenceSimilarityTrainer), StringComparison.Ordinal) ||
                e.Source.StartsWith(nameof(ZeroNamedEntityRecognitionTrainer), StringComparison.Ordinal))
                lock (lines)
                    lines.Add(e.RawMessage);
        };
        return lines;
    }
}
