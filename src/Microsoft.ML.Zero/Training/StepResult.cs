namespace Microsoft.ML.Zero.Training;

/// <summary>
/// One optimizer step as every rank saw it: the global batch's mean loss, whether an fp16 overflow skipped it, the
/// learning rate and loss scale it used, and the gradient norm before clipping (NaN when clipping is off).
/// </summary>
internal readonly record struct StepResult(float Loss, bool Skipped, double LearningRate, double LossScale, double GradientNorm);
