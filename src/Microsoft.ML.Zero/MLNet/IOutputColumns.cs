using Microsoft.ML.Data;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>Returns the model's outputs (class probabilities, or a regression's one value) for the row a cursor or row currently stands on.</summary>
internal delegate ReadOnlySpan<float> CurrentProbabilities();

/// <summary>The columns a model appends to its input: their schema, and a getter of each from the row's model outputs.</summary>
internal interface IOutputColumns
{
    /// <summary>The input schema followed by the model's columns (which hide input columns of the same names).</summary>
    DataViewSchema Append(DataViewSchema input);

    /// <summary>The getter of appended column <paramref name="output"/> (0 is the first after the input's), reading <paramref name="current"/>.</summary>
    Delegate Getter(int output, CurrentProbabilities current);
}

/// <summary>What a scored row or cursor does with a column: pass an input column through, or read an appended one.</summary>
internal static class OutputColumns
{
    /// <summary>Whether <paramref name="column"/> is active: an input column as the input says, an appended one when the row scores.</summary>
    public static bool IsActive(DataViewRow input, DataViewSchema.Column column, bool scoring) =>
        column.Index < input.Schema.Count ? input.IsColumnActive(input.Schema[column.Index]) : scoring;

    /// <summary>
    /// The getter of <paramref name="column"/>: the input's own, or an appended column's read from <paramref name="current"/>
    /// (null when the row was made without them; <paramref name="rowKind"/> names the row in that error).
    /// </summary>
    public static ValueGetter<TValue> Getter<TValue>(DataViewRow input, DataViewSchema.Column column, IOutputColumns outputs, CurrentProbabilities? current, string rowKind)
    {
        int inputCount = input.Schema.Count;
        if (column.Index < inputCount)
            return input.GetGetter<TValue>(input.Schema[column.Index]);
        if (current is null)
            throw new InvalidOperationException($"Column '{column.Name}' was not requested when this {rowKind} was created.");
        return outputs.Getter(column.Index - inputCount, current) as ValueGetter<TValue> ?? throw new InvalidOperationException(
            $"Column '{column.Name}' has type {column.Type}; it cannot be read as {typeof(TValue).Name}.");
    }
}
