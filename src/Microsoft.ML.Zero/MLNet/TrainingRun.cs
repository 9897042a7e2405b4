using Microsoft.ML.Runtime;
using TorchSharp;
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
    private readonly IHost _host;
    private readonly int? _contextSeed;
    private readonly ZeroTrainingOptions _options;

    public TrainingRun(MLContext mlContext, string trainerName, ZeroTrainingOptions options)
    {
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
    private ClassificationLoss Loss(long[]? classCounts, string[] classes, string optionsName) =>
        new(classCounts is null ? _options.ClassWeights?.Weights : ClassificationLoss.BalancedWeights(classCounts, classes, optionsName + ".ClassWeights"),
            _options.LabelSmoothingFactor);

    private string LossSettings() =>
        $"class weights {_options.ClassWeights?.ToString() ?? "none"}, label smoothing {_options.LabelSmoothingFactor.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>Trains and returns every local rank's replica (equal at the end).</summary>
    /// <param name="labels">The label's values, which every rank must key alike.</param>
    /// <param name="countRows">Counts the valid rows; it runs inside the guard, so a bad row under MPI stops the whole job.</param>
    /// <param name="configure">The engine configuration for the given world size.</param>
    /// <param name="what">What is trained, the start of the line logged before training.</param>
    /// <param name="createModel">One replica, given its dropout generator.</param>
    /// <param name="prepare">Runs on the first local replica before training, told whether this process holds rank 0.</param>
    /// <param name="readEpoch">A rank's rows of an epoch: its replica, the rows to read, the number of rows and the loss to train with.</param>
    /// <param name="validationCounts">After each epoch, a rank's share of the validation set scored with its replica (the
    /// replica, the rank, the number of ranks): the rows right and the rows scored; or null.</param>
    /// <param name="countLabels">Counts this process's training rows per class in key order, for balanced class weights.</param>
    public TModel[] Train<TModel>(LabelKeyValues labels, Func<long> countRows, Func<int, EngineConfiguration> configure, string what,
        Func<torch.Generator, TModel> createModel, Action<TModel, bool> prepare, Func<TModel, int[], long, ClassificationLoss, IEpochShard> readEpoch,
        Func<TModel, int, int, (long Correct, long Rows)>? validationCounts = null, Func<long[]>? countLabels = null) where TModel : torch.nn.Module
    {
        using var channel = _host.Start("Training");
        string optionsName = _options.GetType().Name;
        var classes = labels.Names.Select(name => name.ToString()).ToArray();
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
            var training = ShardedTraining.Create(config, rowCount, _options.Run(seed), log.IsMainProcess, log.Info,
                validationCounts is null ? null : (model, rank, worldSize) => validationCounts((TModel)model, rank, worldSize), CancellationRequested,
                System.Text.Json.JsonSerializer.Serialize(classes), LossSettings());
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
}
