using Microsoft.ML.Zero.Distributed.Mpi;
using Microsoft.ML.Zero.Training;
namespace Microsoft.ML.Zero;

/// <summary>The entry point to Microsoft.ML.Zero's trainers, reached through <c>mlContext.Zero()</c>.</summary>
public sealed class ZeroCatalog
{
    private readonly MLContext _mlContext;

    internal ZeroCatalog(MLContext mlContext) => _mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));

    /// <summary>
    /// This process's rank when an MPI launcher (mpirun) started it, one process per rank; 0 when the ranks are
    /// threads of this process.
    /// </summary>
    public int ProcessRank => MpiLaunchEnvironment.Detect()?.Rank ?? 0;

    /// <summary>
    /// True in the process that holds rank 0. Under mpirun every process trains and gets the same model; let only
    /// this one save it or write reports.
    /// </summary>
    public bool IsMainProcess => ProcessRank == 0;

    /// <summary>
    /// The precision a trainer asked for <paramref name="precision"/> computes in on this machine: <see cref="ZeroPrecision.Auto"/>
    /// becomes Bf16 where the CPU computes bf16 natively and Fp32 elsewhere (the trainers log the reason); the others
    /// are returned as they are.
    /// </summary>
    public ZeroPrecision ResolvePrecision(ZeroPrecision precision) => PrecisionChoice.Resolve(precision).Precision;

    /// <summary>
    /// Cancels the MLContext's work, as ML.NET's own (internal) <c>CancelExecution</c> does: a running Fit stops on
    /// every rank at the next optimizer step, writes a last checkpoint when <see cref="ZeroTrainingOptions.CheckpointDirectory"/>
    /// is set (a later Fit with the same folder resumes from it), and throws <see cref="OperationCanceledException"/>.
    /// ML.NET's trainers that honour cancellation stop too. The context stays cancelled: train on with a new one.
    /// </summary>
    public void CancelExecution() => _mlContext.CancelExecution();

    /// <summary>
    /// A data-parallel (ZeRO stage 0) MLP classifier over a numeric feature vector and a key-typed label.
    /// </summary>
    public ZeroTrainer Trainer(ZeroTrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return new ZeroTrainer(_mlContext, options);
    }

    /// <summary>
    /// Fine-tunes a pretrained BERT (a local Hugging Face folder) as a text classifier. The parameters match
    /// <c>mlContext.MulticlassClassification.Trainers.TextClassification</c>, plus the checkpoint folder.
    /// </summary>
    public ZeroTextClassificationTrainer TextClassification(
        string labelColumnName = "Label",
        string scoreColumnName = "Score",
        string outputColumnName = "PredictedLabel",
        string sentence1ColumnName = "Sentence1",
        string? sentence2ColumnName = default,
        int batchSize = 32,
        int maxEpochs = 10,
        IDataView? validationSet = null,
        string? checkpointPath = null) =>
        TextClassification(new ZeroTextClassificationOptions
        {
            LabelColumnName = labelColumnName,
            ScoreColumnName = scoreColumnName,
            PredictionColumnName = outputColumnName,
            Sentence1ColumnName = sentence1ColumnName,
            Sentence2ColumnName = sentence2ColumnName,
            BatchSize = batchSize,
            MaxEpoch = maxEpochs,
            ValidationSet = validationSet,
            CheckpointPath = checkpointPath,
        });

    /// <summary>Fine-tunes a pretrained BERT as a text classifier with all options.</summary>
    public ZeroTextClassificationTrainer TextClassification(ZeroTextClassificationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return new ZeroTextClassificationTrainer(_mlContext, options);
    }
}
