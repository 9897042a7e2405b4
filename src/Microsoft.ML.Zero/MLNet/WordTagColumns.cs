using Microsoft.ML.Data;
using Microsoft.ML.Zero.Data;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// The column a token classifier adds: PredictedLabel, a vector of keys (one per word of the sentence) carrying the
/// label's key values, as Microsoft.ML.TorchSharp's NamedEntityRecognition gives it. A row's model outputs are its
/// word count, then the predicted key of each kept word (<see cref="TokenClassificationScorer"/>); words past the
/// maximum length, or past the last window, get the missing key 0.
/// </summary>
internal sealed class WordTagColumns : IOutputColumns
{
    public WordTagColumns(string predictionColumnName, LabelKeyValues tags)
    {
        PredictionColumnName = predictionColumnName;
        Tags = tags;
    }

    public string PredictionColumnName { get; }

    public LabelKeyValues Tags { get; }

    public DataViewSchema Append(DataViewSchema input)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        var annotations = new DataViewSchema.Annotations.Builder();
        Tags.AddTo(annotations);
        builder.AddColumn(PredictionColumnName, new VectorDataViewType(new KeyDataViewType(typeof(uint), Tags.Count)), annotations.ToAnnotations());
        return builder.ToSchema();
    }

    public Delegate Getter(int output, CurrentProbabilities current) =>
        (ValueGetter<VBuffer<uint>>)((ref VBuffer<uint> destination) =>
        {
            var outputs = current();
            int words = (int)outputs[0];
            int kept = Math.Min(words, outputs.Length - 1);
            var editor = VBufferEditor.Create(ref destination, words);
            for (int word = 0; word < words; word++)
                editor.Values[word] = word < kept ? (uint)outputs[1 + word] : 0;
            destination = editor.Commit();
        });

    /// <summary>Checks the label (a vector of keys) in a pipeline's schema shape and adds PredictedLabel as a trained model will produce it.</summary>
    public static SchemaShape AppendShape(Dictionary<string, SchemaShape.Column> columns, ColumnOption labelColumn, string predictionColumnName)
    {
        if (!columns.TryGetValue(labelColumn.ColumnName, out var label))
            throw ColumnChecks.MissingColumnError(labelColumn, "label", columns.Keys);
        if (!label.IsKey || label.Kind == SchemaShape.Column.VectorKind.Scalar)
            WordLabelColumns.CheckLabelType(labelColumn, label.ItemType);
        var keyValues = label.Annotations.Where(a => a.Name == AnnotationUtils.Kinds.KeyValues).ToList();
        columns[predictionColumnName] = new SchemaShape.Column(predictionColumnName, SchemaShape.Column.VectorKind.VariableVector,
            NumberDataViewType.UInt32, true, new SchemaShape(keyValues));
        return new SchemaShape(columns.Values);
    }
}
