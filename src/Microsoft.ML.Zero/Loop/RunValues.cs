namespace Microsoft.ML.Zero.Loop;

/// <summary>How long a trainer runs, over which rows, and where it keeps checkpoints: the same options on every trainer.</summary>
internal sealed record RunValues(int MaxEpoch, int Seed, ZeroDataSharding Sharding, string? CheckpointDirectory, int CheckpointEverySteps, int KeepCheckpoints,
    ZeroProgress Progress, EvaluationSettings Evaluation);
