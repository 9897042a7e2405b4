using System.ComponentModel;

namespace Microsoft.ML.Zero;

/// <summary>The former name of <see cref="DeepSpeedOptions"/>, kept for one release.</summary>
[Obsolete("Use DeepSpeedOptions: the type of ZeroTrainingOptions.DeepSpeed and of ZeroEngine.Initialize's settings.")]
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class ZeroOptions : DeepSpeedOptions
{
    /// <inheritdoc cref="DeepSpeedOptions.FromDeepSpeedConfig"/>
    public static new ZeroOptions FromDeepSpeedConfig(string pathOrJson) => Read<ZeroOptions>(pathOrJson);
}
