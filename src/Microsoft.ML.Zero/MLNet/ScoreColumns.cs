using Microsoft.ML.Data;
using Microsoft.ML.Zero.Data;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// The two columns a multiclass model adds, in the form ML.NET's evaluators and PredictionEngine expect:
/// Score, a vector of class probabilities with slot names, and PredictedLabel, a key carrying the label's values.
/// </summary>
internal sealed class ScoreColumns : IOutputColumns
{
    public ScoreColumns(string scoreColumnName, string predictionColumnName, LabelKeyValues labels)
    {
        ScoreColumnName = scoreColumnName;
        PredictionColumnName = predictionColumnName;
        Labels = labels;
    }

    public string ScoreColumnName { get; }

    public string PredictionColumnName { get; }

    public LabelKeyValues Labels { get; }

    /// <summary>The input schema followed by Score and PredictedLabel (which hide input columns of the same names).</summary>
    public DataViewSchema Append(DataViewSchema input)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);

        var scoreAnnotations = new DataViewSchema.Annotations.Builder();
        var names = Labels.Names;
        scoreAnnotations.AddSlotNames(names.Length, (ref VBuffer<ReadOnlyMemory<char>> destination) =>
            new VBuffer<ReadOnlyMemory<char>>(names.Length, names).CopyTo(ref destination));
        AddText(scoreAnnotations, AnnotationUtils.Kinds.ScoreColumnKind, AnnotationUtils.Const.ScoreColumnKind.MulticlassClassification);
        AddText(scoreAnnotations, AnnotationUtils.Kinds.ScoreValueKind, AnnotationUtils.Const.ScoreValueKind.Score);
        builder.AddColumn(ScoreColumnName, new VectorDataViewType(NumberDataViewType.Single, Labels.Count), scoreAnnotations.ToAnnotations());

        var labelAnnotations = new DataViewSchema.Annotations.Builder();
        Labels.AddTo(labelAnnotations);
        builder.AddColumn(PredictionColumnName, new KeyDataViewType(typeof(uint), Labels.Count), labelAnnotations.ToAnnotations());
        return builder.ToSchema();
    }

    /// <summary>
    /// Checks the label in a pipeline's schema shape and adds Score and PredictedLabel (carrying the label's key values)
    /// as a trained model will produce them.
    /// </summary>
    public static SchemaShape AppendShape(Dictionary<string, SchemaShape.Column> columns, ColumnOption labelColumn,
        string scoreColumnName, string predictionColumnName)
    {
        if (!columns.TryGetValue(labelColumn.ColumnName, out var label))
            throw ColumnChecks.MissingColumnError(labelColumn, "label", columns.Keys);
        if (!label.IsKey || label.Kind != SchemaShape.Column.VectorKind.Scalar)
            throw ColumnChecks.LabelTypeError(labelColumn, label.GetTypeString());

        var scoreAnnotations = new List<SchemaShape.Column>
        {
            new(AnnotationUtils.Kinds.SlotNames, SchemaShape.Column.VectorKind.Vector, TextDataViewType.Instance, false),
            new(AnnotationUtils.Kinds.ScoreColumnKind, SchemaShape.Column.VectorKind.Scalar, TextDataViewType.Instance, false),
            new(AnnotationUtils.Kinds.ScoreValueKind, SchemaShape.Column.VectorKind.Scalar, TextDataViewType.Instance, false),
        };
        var labelAnnotations = label.Annotations.Where(a => a.Name == AnnotationUtils.Kinds.KeyValues).ToList();
        columns[scoreColumnName] = new SchemaShape.Column(scoreColumnName, SchemaShape.Column.VectorKind.Vector,
            NumberDataViewType.Single, false, new SchemaShape(scoreAnnotations));
        columns[predictionColumnName] = new SchemaShape.Column(predictionColumnName, SchemaShape.Column.VectorKind.Scalar,
            NumberDataViewType.UInt32, true, new SchemaShape(labelAnnotations));
        return new SchemaShape(columns.Values);
    }

    /// <summary>Score (0) or PredictedLabel (1), read from the current row's probabilities.</summary>
    public Delegate Getter(int output, CurrentProbabilities current) =>
        output == 0 ? ScoreGetter(current, Labels.Count) : PredictedLabelGetter(current);

    /// <summary>A getter for Score that reads the current row's probabilities from <paramref name="current"/>.</summary>
    private static ValueGetter<VBuffer<float>> ScoreGetter(CurrentProbabilities current, int classCount) =>
        (ref VBuffer<float> destination) =>
        {
            var editor = VBufferEditor.Create(ref destination, classCount);
            current().CopyTo(editor.Values);
            destination = editor.Commit();
        };

    /// <summary>A getter for PredictedLabel: the most probable class as a one-based key, 0 (missing) if scores are NaN.</summary>
    private static ValueGetter<uint> PredictedLabelGetter(CurrentProbabilities current) =>
        (ref uint destination) =>
        {
            var probabilities = current();
            int best = -1;
            for (int i = 0; i < probabilities.Length; i++)
            {
                if (float.IsNaN(probabilities[i]))
                {
                    best = -1;
                    break;
                }
                if (best < 0 || probabilities[i] > probabilities[best])
                    best = i;
            }
            destination = (uint)(best + 1);
        };

    private static void AddText(DataViewSchema.Annotations.Builder builder, string kind, string value) =>
        builder.Add(kind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> destination) => destination = value.AsMemory());
}
