using Microsoft.ML.Data;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.Models;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// Scores a feature vector column with a trained module, without gradients: the built-in MLP, or a user-defined module
/// whose <see cref="ZeroModelFactory"/> shapes its input and turns its output into class probabilities.
/// </summary>
internal sealed class TabularScorer : IRowScorer
{
    public const string MlpKind = "MLP", CustomKind = "CustomModel";

    public TabularScorer(nn.Module<Tensor, Tensor> model, ZeroModelFactory factory, string featureColumnName, int featureCount, int classCount)
    {
        Model = model;
        Model.eval();
        Factory = factory;
        FeatureColumnName = featureColumnName;
        FeatureCount = featureCount;
        ClassCount = classCount;
    }

    public nn.Module<Tensor, Tensor> Model { get; }

    public ZeroModelFactory Factory { get; }

    public string FeatureColumnName { get; }

    public string Kind => Factory is MlpModelFactory ? MlpKind : CustomKind;

    public int FeatureCount { get; }

    public int ClassCount { get; }

    public DataViewSchema.Column[] CheckInputs(DataViewSchema schema)
    {
        var column = schema.GetColumnOrNull(FeatureColumnName) ?? throw new ArgumentOutOfRangeException(nameof(schema),
            $"Could not find feature column '{FeatureColumnName}' in the data to score; the model was trained on it.");
        if (column.Type is not VectorDataViewType { ItemType: NumberDataViewType item, Size: var size } || item != NumberDataViewType.Single || size != FeatureCount)
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Feature column '{FeatureColumnName}' has type {column.Type}; the model expects Vector<Single, {FeatureCount}>.");
        return new[] { column };
    }

    // Feature rows all cost the same: nothing to regroup.
    public int BatchesReadTogether => 1;

    public IScoringBatch CreateBatch(DataViewRow row, int capacity, int forwardRows) => new Batch(this, row, capacity);

    public void Save(ModelSaveContext ctx)
    {
        ctx.SaveNonEmptyString(FeatureColumnName);
        if (Factory is MlpModelFactory mlp)
        {
            mlp.Shape.Save(ctx.Writer);
        }
        else
        {
            ctx.SaveNonEmptyString(ZeroModelFactory.TypeName(Factory.GetType()));
            ctx.Writer.Write(FeatureCount);
            ctx.Writer.Write(ClassCount);
        }
        ctx.SaveBinaryStream(ModelZip.WeightsStreamName, writer => Model.save(writer));
    }

    public static TabularScorer Load(ModelLoadContext ctx, string kind, int labelCount)
    {
        string source = ModelZip.Source(ctx);
        string featureColumnName = ctx.LoadNonEmptyString();
        ZeroModelFactory factory;
        int featureCount, classCount;
        if (kind == MlpKind)
        {
            var shape = MlpShape.Load(ctx.Reader, source);
            (factory, featureCount, classCount) = (new MlpModelFactory(shape), shape.InputSize, shape.ClassCount);
        }
        else
        {
            factory = ZeroModelFactory.Create(ctx.LoadNonEmptyString());
            (featureCount, classCount) = (ctx.Reader.ReadInt32(), ctx.Reader.ReadInt32());
        }
        OptionCheck.RequireInFile(featureCount is >= 1 and <= ModelLimits.MaxSize, source, "the feature count", featureCount, $"1 to {ModelLimits.MaxSize}");
        ModelZip.RequireClassCount(classCount, labelCount, source);
        // The MLP's weight count follows from its shape; a user's module is counted once built.
        long? weights = factory is MlpModelFactory mlp ? MlpClassifier.StateElementCount(mlp.Shape) : null;
        var model = ModelZip.LoadWeights(ctx, weights, () => factory.CreateModel(featureCount, classCount));
        return new TabularScorer(model, factory, featureColumnName, featureCount, classCount);
    }

    public void Dispose() => Model.Dispose();

    private sealed class Batch : IScoringBatch
    {
        private readonly TabularScorer _scorer;
        private readonly ValueGetter<VBuffer<float>> _getFeatures;
        private readonly float[] _features;
        private VBuffer<float> _row;

        public Batch(TabularScorer scorer, DataViewRow row, int capacity)
        {
            _scorer = scorer;
            _getFeatures = row.GetGetter<VBuffer<float>>(row.Schema[scorer.FeatureColumnName]);
            _features = new float[capacity * scorer.FeatureCount];
        }

        public void ReadRow(int slot)
        {
            _getFeatures(ref _row);
            _row.CopyTo(_features.AsSpan(slot * _scorer.FeatureCount, _scorer.FeatureCount));
        }

        public void Score(int rows, float[] probabilities)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            // The buffer may hold more rows than this (last) batch: score only the first rows.
            var input = tensor(_features, new long[] { _features.Length / _scorer.FeatureCount, _scorer.FeatureCount }).narrow(0, 0, rows);
            var output = _scorer.Factory.Scores(_scorer.Model.call(_scorer.Factory.BuildInput(input)));
            if (output.dtype != ScalarType.Float32 || output.shape is not [var outputRows, var classes] || outputRows != rows || classes != _scorer.ClassCount)
                throw new InvalidOperationException($"{_scorer.Factory.GetType().Name}.Scores returned {output.dtype} [{string.Join(", ", output.shape)}]; " +
                    $"expected Float32 [{rows}, {_scorer.ClassCount}]: one probability per class for each row.");
            TensorMemory.AsSpan(output.contiguous()).CopyTo(probabilities);
        }
    }
}
