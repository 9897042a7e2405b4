namespace Microsoft.ML.Zero.Data;

/// <summary>
/// A column that a trainer option names, with the option's full name (say, "ZeroTrainerOptions.LabelColumnName"), so
/// that schema errors tell the user which option to change.
/// </summary>
internal readonly record struct ColumnOption(string ColumnName, string OptionName)
{
    /// <summary>The option's own name, the parameter name of the exceptions that reject it.</summary>
    public string Parameter => OptionName[(OptionName.LastIndexOf('.') + 1)..];
}
