using Microsoft.ML.Runtime;
using TorchSharp;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Engine;
using Microsoft.ML.Zero.Loop;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// What every trainer's Fit does around its own model and data: the "Training" channel, the ranks, the engine
/// configuration and its notes, the replicas and the sharded training loop. A trainer gives only the parts that differ.
/// </summary>
internal sealed class TrainingRun
{
    private readonly MLContext _mlContext;
    private readonly IHost _host;
    private readonly int? _contextSeed;
    private readonly ZeroTrainingOptions _options;

    public TrainingRun(MLContext mlContext, string trainerName, ZeroTrainingOptions options)
    {
        _mlContext = mlContext;
        _host = ((IHostEnvironment)mlContext).Register(trainerName);
        _contextSeed = ((IHostEnvironmentInternal)mlContext).Seed;
        _options = options;
    }

    // Set by SIGTERM under mpirun (a scheduler's or mpirun's request to stop), which then stops the job as a cancellation does.
    private volatile bool _terminationRequested;

    // ML.NET's cancellation (MLContext's CancelExecution), or SIGTERM under mpirun, as a plain question the loop can ask.
    private bool CancellationRequested()
    {
        if (_terminationRequested)
            return true;
        try
        {
            _host.CheckAlive();
            return false;
        }
        catch (OperationCanceledException)
        {
            return true;
        }
    }

    // The loss the options ask for; balanced class weights come from the training set's rows per class, agreed by the ranks.
    private ClassificationLoss Loss(long[]? classCounts, IReadOnlyList<string> classes, string optionsName) =>
        new(classCounts is null ? _options.ClassWeights?.Weights : ClassificationLoss.BalancedWeights(classCounts, classes, optionsName + ".ClassWeights"),
            _options.LabelSmoothingFactor);

    private string LossSettings() =>
        $"class weights {_options.ClassWeights?.ToString() ?? "none"}, label smoothing {_options.LabelSmoothingFactor.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>Trains and returns every local rank's replica (equal at the end).</summary>
    /// <param name="classes">The label's values in key order, which every rank must key alike; none for a regression.</param>
    /// <param name="countRows">Counts the valid rows; it runs inside the guard, so a bad row under MPI stops the whole job.</param>
    /// <param name="configure">The engine configuration for the given world size.</param>
    /// <param name="what">What is trained, the start of the line logged before training.</param>
    /// <param name="createModel">One replica, given its dropout generator.</param>
    /// <param name="prepare">Runs on the first local replica before training, told whether this process holds rank 0.</param>
    /// <param name="readEpoch">A rank's rows of an epoch: its replica, the rows to read, the number of rows and the loss to train with.</param>
    /// <param name="validation">Scores the validation set during training (<see cref="Validates"/>), or null.</param>
    /// <param name="countLabels">Counts this process's training rows per class in key order, for balanced class weights.</param>
    /// <param name="groupByLength">Given the row count, every row's length and how to group batches by it; computed once
    /// per process (every local rank shares it), inside the guard; or null to batch the rows as shuffled.</param>
    public TModel[] Train<TModel>(IReadOnlyList<string> classes, Func<long> countRows, Func<int, EngineConfiguration> configure, string what,
        Func<torch.Generator, TModel> createModel, Action<TModel, bool> prepare, Func<TModel, int[], long, ClassificationLoss, IEpochShard> readEpoch,
        IValidation? validation, Func<long[]> countLabels, Func<long, LengthGroupedOrder>? groupByLength = null)
        where TModel : torch.nn.Module
    {
        using var channel = _host.Start("Training");
        string optionsName = _options.GetType().Name;
        _options.ClassWeights?.RequireOnePerClass(optionsName + ".ClassWeights", classes);
        var layout = RankLayout.Resolve(_options.WorldSize, optionsName + ".WorldSize", _options.CommunicationTimeout, optionsName + ".CommunicationTimeout");
        var log = new RankZeroLog(channel, layout, _options.Progress);
        // One rank's process told to stop stops the whole job at the next step, after a checkpoint, rather than dying
        // while the others wait in a collective.
        using var sigterm = layout.OneProcessPerRank && !OperatingSystem.IsWindows()
            ? System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, signal =>
            {
                signal.Cancel = true;
                _terminationRequested = true;
            })
            : null;
        return layout.Guard(() =>
        {
            long rowCount = countRows();
            long[]? labelCounts = _options.ClassWeights is { IsBalanced: true } ? countLabels!() : null;
            int worldSize = layout.WorldSize;
            var config = configure(worldSize);
            log.Notes(config);
            bool plainLoss = _options.ClassWeights is null && _options.LabelSmoothingFactor == 0;
            log.Info($"{what}, {config.Describe(worldSize)}, {_options.MaxEpoch} epoch(s)" + (plainLoss ? "." : $", cross-entropy with {LossSettings()}."));

            int seed = _options.ResolveSeed(_contextSeed);
            var replicas = layout.CreateReplicas(seed, createModel, out var generators);
            prepare(replicas[0], layout.IsMainProcess);
            validation?.RequireScorable(replicas[0]);
            var training = ShardedTraining.Create(config, rowCount, _options.Run(seed), log.IsMainProcess, log.Info, validation, CancellationRequested,
                System.Text.Json.JsonSerializer.Serialize(classes), groupByLength?.Invoke(rowCount), LossSettings());
            layout.Train(replicas, (model, communicator) =>
            {
                // Made when the first epoch is read, which every rank does at the same point after agreeing on the run, so
                // the collective that sums the class counts meets the same collective on every rank.
                var loss = new Lazy<ClassificationLoss>(() =>
                {
                    var made = Loss(labelCounts is null ? null : training.AgreeOnLabelCounts(communicator, labelCounts), classes, optionsName);
                    if (labelCounts is not null && communicator.Rank == 0)
                        log.Info($"Balanced class weights: {string.Join(", ", classes.Zip(made.ClassWeights!, (name, weight) => $"{name} {weight:G4}"))}.");
                    return made;
                });
                training.Run(model, communicator, rows => readEpoch(model, rows, rowCount, loss.Value), generators[Array.IndexOf(replicas, model)]);
            });
            return replicas;
        });
    }

    /// <summary>A classifier's validation set when the options ask for one: scored into <paramref name="outputs"/> by a replica's transformer.</summary>
    public IValidation? ClassificationValidation<TModel>(ScoreColumns outputs, Func<TModel, ZeroTransformer> transformerOf) where TModel : torch.nn.Module =>
        Validates ? new ClassificationValidation(_mlContext, _options.ValidationSet!, _options.LabelColumn, outputs, model => transformerOf((TModel)model)) : null;

    /// <summary>A regression's validation set when the options ask for one.</summary>
    public IValidation? RegressionValidation<TModel>(Func<TModel, ITransformer> transformerOf) where TModel : torch.nn.Module =>
        Validates ? new RegressionValidation(_mlContext, _options.ValidationSet!, _options.LabelColumn, _options.ScoreColumnName, model => transformerOf((TModel)model)) : null;

    /// <summary>A token classifier's validation set when the options ask for one: its words tagged into <paramref name="outputs"/>.</summary>
    public IValidation? TokenClassificationValidation<TModel>(WordTagColumns outputs, Func<TModel, ITransformer> transformerOf) where TModel : torch.nn.Module =>
        Validates ? new TokenClassificationValidation(_mlContext, _options.ValidationSet!, _options.LabelColumn, outputs, model => transformerOf((TModel)model)) : null;

    /// <summary>Whether the options ask for a validation set to be scored during training.</summary>
    public bool Validates => _options.ValidationSet is not null && _options.EvaluationStrategy != ZeroEvaluationStrategy.No;
}
