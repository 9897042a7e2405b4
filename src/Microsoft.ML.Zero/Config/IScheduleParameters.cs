namespace Microsoft.ML.Zero.Config;

/// <summary>
/// A ds_config <c>scheduler.params</c> object, read key by key with type checks. Absent keys and <c>"auto"</c> give
/// null, except where a different DeepSpeed default for an absent key is passed in.
/// </summary>
internal interface IScheduleParameters
{
    double? Number(string key, double? whenAbsent = null);

    int? Int(string key);

    bool? Bool(string key);

    string? String(string key);

    /// <summary>Whether the key is present as <c>"auto"</c>.</summary>
    bool IsAuto(string key);

    /// <summary>An error naming the key by its JSON path.</summary>
    Exception Error(string key, string message);
}
