namespace Microsoft.ML.Zero.Config;

/// <summary>The one way options report a value out of range: the option's full name, its value and what was expected.</summary>
internal static class OptionCheck
{
    public static void Require(bool condition, string option, object? value, string expected)
    {
        if (!condition)
            throw new ArgumentOutOfRangeException(option, value, $"{option} is {value ?? "null"}; expected {expected}.");
    }

    /// <summary>The same for a value read from a file: an InvalidDataException naming the file (or zip entry), the field, its value and what was expected.</summary>
    public static void RequireInFile(bool condition, string source, string field, object? value, string expected)
    {
        if (!condition)
            throw new InvalidDataException($"'{source}': {field} is {value ?? "null"}; expected {expected}.");
    }
}
