namespace Microsoft.ML.Zero;

/// <summary>
/// One optimizer step as every rank saw it: the mean loss of the step's global batch (the mean over ranks of each
/// rank's loss shares), whether an fp16 overflow skipped it, the learning rate and loss scale it used, and the gradient
/// norm before clipping (NaN when clipping is off).
/// </summary>
public readonly record struct ZeroStepResult(float Loss, bool Skipped, double LearningRate, double LossScale, double GradientNorm);
