using Microsoft.ML.Data;
using Microsoft.ML.Zero.Data;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// The column a regression model adds, as ML.NET's regression evaluator and PredictionEngine expect it: Score, a Single
/// with the regression score-column annotations.
/// </summary>
internal sealed class RegressionColumns : IOutputColumns
{
    public RegressionColumns(string scoreColumnName) => ScoreColumnName = scoreColumnName;

    public string ScoreColumnName { get; }

    public DataViewSchema Append(DataViewSchema input)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        var annotations = new DataViewSchema.Annotations.Builder();
        AddText(annotations, AnnotationUtils.Kinds.ScoreColumnKind, AnnotationUtils.Const.ScoreColumnKind.Regression);
        AddText(annotations, AnnotationUtils.Kinds.ScoreValueKind, AnnotationUtils.Const.ScoreValueKind.Score);
        builder.AddColumn(ScoreColumnName, NumberDataViewType.Single, annotations.ToAnnotations());
        return builder.ToSchema();
    }

    public Delegate Getter(int output, CurrentProbabilities current) =>
        (ValueGetter<float>)((ref float destination) => destination = current()[0]);

    /// <summary>Checks the label (a Single) in a pipeline's schema shape and adds Score as a trained model will produce it.</summary>
    public static SchemaShape AppendShape(Dictionary<string, SchemaShape.Column> columns, ColumnOption labelColumn, string scoreColumnName)
    {
        if (!columns.TryGetValue(labelColumn.ColumnName, out var label))
            throw ColumnChecks.MissingColumnError(labelColumn, "label", columns.Keys);
        if (label.Kind != SchemaShape.Column.VectorKind.Scalar || label.ItemType != NumberDataViewType.Single)
            throw ColumnChecks.RegressionLabelTypeError(labelColumn, label.GetTypeString());
        var annotations = new List<SchemaShape.Column>
        {
            new(AnnotationUtils.Kinds.ScoreColumnKind, SchemaShape.Column.VectorKind.Scalar, TextDataViewType.Instance, false),
            new(AnnotationUtils.Kinds.ScoreValueKind, SchemaShape.Column.VectorKind.Scalar, TextDataViewType.Instance, false),
        };
        columns[scoreColumnName] = new SchemaShape.Column(scoreColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false, new SchemaShape(annotations));
        return new SchemaShape(columns.Values);
    }

    private static void AddText(DataViewSchema.Annotations.Builder builder, string kind, string value) =>
        builder.Add(kind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> destination) => destination = value.AsMemory());
}
