using Microsoft.ML.Data;
using Microsoft.ML.Zero.Models;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero;

/// <summary>Scores a feature vector column with a trained MLP, without gradients.</summary>
internal sealed class MlpScorer : IRowScorer
{
    public const string ModelKind = "MLP";
    private const string WeightsStreamName = "TorchWeights.bin";

    public MlpScorer(MlpClassifier model, string featureColumnName)
    {
        Model = model;
        Model.eval();
        FeatureColumnName = featureColumnName;
    }

    public MlpClassifier Model { get; }

    public string FeatureColumnName { get; }

    public string Kind => ModelKind;

    public int FeatureCount => Model.Shape.InputSize;

    public int ClassCount => Model.Shape.ClassCount;

    public DataViewSchema.Column[] CheckInputs(DataViewSchema schema)
    {
        var column = schema.GetColumnOrNull(FeatureColumnName) ?? throw new ArgumentOutOfRangeException(nameof(schema),
            $"Could not find feature column '{FeatureColumnName}' in the data to score; the model was trained on it.");
        if (column.Type is not VectorDataViewType { ItemType: NumberDataViewType item, Size: var size } || item != NumberDataViewType.Single || size != FeatureCount)
            throw new ArgumentOutOfRangeException(nameof(schema),
                $"Feature column '{FeatureColumnName}' has type {column.Type}; the model expects Vector<Single, {FeatureCount}>.");
        return new[] { column };
    }

    public IScoringBatch CreateBatch(DataViewRow row, int capacity) => new Batch(this, row, capacity);

    public void Save(ModelSaveContext ctx)
    {
        ctx.SaveNonEmptyString(FeatureColumnName);
        Model.Shape.Save(ctx.Writer);
        ctx.SaveBinaryStream(WeightsStreamName, writer => Model.save(writer));
    }

    public static MlpScorer Load(ModelLoadContext ctx)
    {
        string featureColumnName = ctx.LoadNonEmptyString();
        var model = new MlpClassifier(MlpShape.Load(ctx.Reader), new Generator(0));
        if (!ctx.TryLoadBinaryStream(WeightsStreamName, reader => model.load(reader)))
            throw new InvalidDataException($"The model has no '{WeightsStreamName}' stream; the file is incomplete.");
        return new MlpScorer(model, featureColumnName);
    }

    public void Dispose() => Model.Dispose();

    private sealed class Batch : IScoringBatch
    {
        private readonly MlpScorer _scorer;
        private readonly ValueGetter<VBuffer<float>> _getFeatures;
        private readonly float[] _features;
        private VBuffer<float> _row;

        public Batch(MlpScorer scorer, DataViewRow row, int capacity)
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
            var output = nn.functional.softmax(_scorer.Model.forward(input).to(ScalarType.Float32), dim: 1).contiguous();
            TensorMemory.AsSpan(output).CopyTo(probabilities);
        }
    }
}
