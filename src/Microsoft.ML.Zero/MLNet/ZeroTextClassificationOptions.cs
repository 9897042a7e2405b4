using Microsoft.ML.Zero.Monitoring;
namespace Microsoft.ML.Zero;

/// <summary>
/// Options of <see cref="ZeroTextClassificationTrainer"/>: fine-tunes a pretrained BERT (a local Hugging Face folder)
/// as a text classifier, data-parallel on <see cref="ZeroTrainingOptions.WorldSize"/> ranks. Names follow Microsoft.ML.TorchSharp's
/// TextClassificationTrainer.Options; DeepSpeed config keys are in brackets. Without <see cref="ZeroTrainingOptions.DeepSpeed"/>
/// settings it trains in <see cref="ZeroPrecision.Auto"/>: bf16 where the CPU computes it natively, else fp32.
/// </summary>
public sealed class ZeroTextClassificationOptions : ZeroBertOptions
{
    internal void Validate()
    {
        ValidateBertOptions();
        Require(ValidationMetrics.IsClassification(MetricForBestModel), nameof(MetricForBestModel), MetricForBestModel,
            "a classifier's metric: Accuracy, MacroF1 or LogLoss");
    }
}
