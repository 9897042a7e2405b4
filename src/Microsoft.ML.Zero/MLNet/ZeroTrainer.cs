using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Engine;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Models;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero;

/// <summary>
/// Trains a classifier over a numeric feature vector (an MLP, or the module of <see cref="ZeroTrainerOptions.ModelFactory"/>) data-parallel on <see cref="ZeroTrainingOptions.WorldSize"/> in-process ranks: each rank
/// holds a full replica, reads its shard of the data, and the ranks average gradients before every optimizer step.
/// </summary>
public sealed class ZeroTrainer : IEstimator<ZeroTransformer>
{
    private readonly TrainingRun _run;
    private readonly ZeroTrainerOptions _options;

    internal ZeroTrainer(MLContext mlContext, ZeroTrainerOptions options)
    {
        _run = new TrainingRun(mlContext, nameof(ZeroTrainer), options);
        _options = options;
    }

    /// <summary>Trains on <paramref name="input"/> and returns the trained model (rank 0's replica).</summary>
    public ZeroTransformer Fit(IDataView input)
    {
        var replicas = TrainReplicas(input, out var labels, out var factory, out int featureCount);
        foreach (var replica in replicas.Skip(1))
            replica.Dispose();
        return Transformer(replicas[0], factory, featureCount, labels);
    }

    private ZeroTransformer Transformer(nn.Module<Tensor, Tensor> model, ZeroModelFactory factory, int featureCount, LabelKeyValues labels) =>
        new(new TabularScorer(model, factory, _options.FeatureColumnName, featureCount, labels.Count),
            new ScoreColumns(_options.ScoreColumnName, _options.PredictionColumnName, labels), _options.ScoringBatchSize);

    /// <summary>Trains and returns every rank's replica (equal at the end), with the label's key values.</summary>
    internal nn.Module<Tensor, Tensor>[] TrainReplicas(IDataView input, out LabelKeyValues labels) => TrainReplicas(input, out labels, out _, out _);

    private nn.Module<Tensor, Tensor>[] TrainReplicas(IDataView input, out LabelKeyValues labels, out ZeroModelFactory factory, out int featureCount)
    {
        ArgumentNullException.ThrowIfNull(input);
        _options.Validate();
        var columns = new TabularColumns(input, _options.FeatureColumn, _options.LabelColumn);
        var keys = LabelKeyValues.FromLabel(columns.Label, columns.ClassCount);
        labels = keys;
        featureCount = columns.FeatureCount;
        var shape = new MlpShape(columns.FeatureCount, (int[])_options.HiddenLayerSizes.Clone(), columns.ClassCount, _options.Activation, _options.Dropout);
        var modelFactory = _options.ModelFactory ?? new MlpModelFactory(shape);
        factory = modelFactory;
        TorchRuntime.EnsureLoaded();

        string model = modelFactory is MlpModelFactory ? "an MLP" : $"the module of {modelFactory.GetType().Name}";
        var outputs = new ScoreColumns(_options.ScoreColumnName, _options.PredictionColumnName, keys);
        return _run.Train(keys.Names.Select(name => name.ToString()).ToArray(), columns.CountValidRows,
            worldSize => EngineConfiguration.Resolve(nameof(ZeroTrainerOptions), _options.DeepSpeed, TrainerValues(_options), TrainerValues(new ZeroTrainerOptions()), worldSize, null),
            $"Training {model}: {columns.FeatureCount} features, {columns.ClassCount} classes",
            generator => modelFactory is MlpModelFactory mlp ? mlp.Create(generator) : modelFactory.CreateModel(columns.FeatureCount, columns.ClassCount),
            (first, _) =>
            {
                if (modelFactory is not MlpModelFactory)
                    RequireRebuildable(modelFactory, first, columns.FeatureCount, columns.ClassCount);
            },
            (model, rows, rowCount, loss) =>
            {
                var features = new float[rows.Length * columns.FeatureCount];
                var labels = new long[rows.Length];
                columns.ReadRows(rows, rowCount, features, labels);
                // A factory's own LossSum stays the loss (the options refuse class weights and smoothing with it).
                return new TabularEpochShard(model, modelFactory, features, labels, columns.FeatureCount, modelFactory.OverridesLossSum ? null : loss);
            },
            _run.ClassificationValidation<nn.Module<Tensor, Tensor>>(outputs, model => Transformer(model, modelFactory, columns.FeatureCount, keys)),
            () => LabelCounts.Count(input, columns.Label, columns.ClassCount));
    }

    /// <summary>Checks the input columns and returns the schema the trained model will produce.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        _options.Validate();
        var columns = inputSchema.ToDictionary(c => c.Name);
        if (!columns.TryGetValue(_options.FeatureColumnName, out var features))
            throw ColumnChecks.MissingColumnError(_options.FeatureColumn, "feature", columns.Keys);
        if (features.Kind != SchemaShape.Column.VectorKind.Vector || features.ItemType != NumberDataViewType.Single)
            throw TabularColumns.FeatureTypeError(_options.FeatureColumn, features.GetTypeString());
        return ScoreColumns.AppendShape(columns, _options.LabelColumn, _options.ScoreColumnName, _options.PredictionColumnName);
    }

    // A saved model keeps only the factory's type: one made again from it must build a module of the same shape.
    private static void RequireRebuildable(ZeroModelFactory factory, nn.Module<Tensor, Tensor> trained, int featureCount, int classCount)
    {
        using var rebuilt = ZeroModelFactory.Create(ZeroModelFactory.TypeName(factory.GetType())).CreateModel(featureCount, classCount);
        static string Shapes(nn.Module module) => string.Join("; ", module.named_parameters().Select(p => $"{p.name} [{string.Join(", ", p.parameter.shape)}]"));
        if (Shapes(rebuilt) != Shapes(trained))
            throw new ArgumentException($"ZeroTrainerOptions.ModelFactory ({factory.GetType().Name}) builds a different module when made again with its " +
                "parameterless constructor, as loading a saved model does; a factory's fields and constructor arguments are not saved. " +
                $"Built now: {Shapes(trained)}. Made again: {Shapes(rebuilt)}.", nameof(ZeroTrainerOptions.ModelFactory));
    }

    private static TrainerValues TrainerValues(ZeroTrainerOptions o) =>
        new(o.BatchSize, o.Optimizer, o.LearningRate, o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay, o.Momentum)
        {
            Scheduler = o.LearningRateSchedulerType, WarmupRatio = o.WarmupRatio,
        };

}
