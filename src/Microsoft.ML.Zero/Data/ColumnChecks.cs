using Microsoft.ML.Data;

namespace Microsoft.ML.Zero.Data;

/// <summary>Schema checks shared by the trainers, with messages that name the column, the option and what was expected.</summary>
internal static class ColumnChecks
{
    /// <summary>The column named by <paramref name="option"/> (e.g. "ZeroTrainerOptions.LabelColumnName"), or an error listing the columns present.</summary>
    public static DataViewSchema.Column Find(DataViewSchema schema, string name, string role, string option)
    {
        if (string.IsNullOrEmpty(name))
            throw new ArgumentException($"{option} must name the {role} column.", option);
        return schema.GetColumnOrNull(name) ?? throw MissingColumnError(name, role, option, schema.Where(c => !c.IsHidden).Select(c => c.Name));
    }

    public static ArgumentOutOfRangeException MissingColumnError(string name, string role, string option, IEnumerable<string> present) =>
        new(option, $"Could not find {role} column '{name}' ({option}). Columns present: " + string.Join(", ", present.Select(c => $"'{c}'")) + ".");

    /// <summary>Throws unless <paramref name="type"/> is a UInt32 key of known cardinality; returns that cardinality.</summary>
    public static int CheckLabelType(string name, DataViewType type)
    {
        if (type is KeyDataViewType { RawType: var raw, Count: > 1 and <= int.MaxValue } key && raw == typeof(uint))
            return (int)key.Count;
        if (type is KeyDataViewType { Count: <= 1 } small)
            throw new ArgumentOutOfRangeException("LabelColumnName", $"Label column '{name}' has {small.Count} class(es); a classifier needs at least 2.");
        throw LabelTypeError(name, type.ToString()!);
    }

    public static ArgumentOutOfRangeException LabelTypeError(string name, string type) =>
        new("LabelColumnName", $"Label column '{name}' has type {type}; expected a key type (Key<UInt32>). " +
            $"Add mlContext.Transforms.Conversion.MapValueToKey(\"{name}\") before the trainer.");
}
