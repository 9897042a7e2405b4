using Microsoft.ML.Data;
using Microsoft.ML.Zero.Config;

namespace Microsoft.ML.Zero.Data;

/// <summary>Schema checks shared by the trainers, with messages that name the column, the option and what was expected.</summary>
internal static class ColumnChecks
{
    /// <summary>The column <paramref name="column"/> names, or an error listing the columns present.</summary>
    public static DataViewSchema.Column Find(DataViewSchema schema, ColumnOption column, string role)
    {
        if (string.IsNullOrEmpty(column.ColumnName))
            throw new ArgumentException($"{column.OptionName} must name the {role} column.", column.OptionName);
        return schema.GetColumnOrNull(column.ColumnName) ?? throw MissingColumnError(column, role, schema.Where(c => !c.IsHidden).Select(c => c.Name));
    }

    public static ArgumentOutOfRangeException MissingColumnError(ColumnOption column, string role, IEnumerable<string> present) =>
        new(column.OptionName, $"Could not find {role} column '{column.ColumnName}' ({column.OptionName}). Columns present: " + string.Join(", ", present.Select(c => $"'{c}'")) + ".");

    /// <summary>Throws unless <paramref name="type"/> is a UInt32 key of known cardinality; returns that cardinality.</summary>
    public static int CheckLabelType(ColumnOption label, DataViewType type)
    {
        string name = label.ColumnName;
        if (type is KeyDataViewType { RawType: var raw, Count: > 1 and <= ModelLimits.MaxSize } key && raw == typeof(uint))
            return (int)key.Count;
        if (type is KeyDataViewType { Count: <= 1 } small)
            throw new ArgumentOutOfRangeException(label.Parameter, $"Label column '{name}' has {small.Count} class(es); a classifier needs at least 2.");
        // The limit a saved model's load checks, so that what trains also loads.
        if (type is KeyDataViewType { Count: > ModelLimits.MaxSize, RawType: var rawType } large && rawType == typeof(uint))
            throw new ArgumentOutOfRangeException(label.Parameter, $"Label column '{name}' has {large.Count} classes; expected at most {ModelLimits.MaxSize}.");
        throw LabelTypeError(label, type.ToString()!);
    }

    public static ArgumentOutOfRangeException LabelTypeError(ColumnOption label, string type) =>
        new(label.Parameter, $"Label column '{label.ColumnName}' has type {type}; expected a key type (Key<UInt32>). " +
            $"Add mlContext.Transforms.Conversion.MapValueToKey(\"{label.ColumnName}\") before the trainer.");

    public static ArgumentOutOfRangeException RegressionLabelTypeError(ColumnOption label, string type) =>
        new(label.Parameter, $"Label column '{label.ColumnName}' has type {type}; expected Single (a float score). " +
            $"Convert it with mlContext.Transforms.Conversion.ConvertType(\"{label.ColumnName}\", outputKind: DataKind.Single).");
}
