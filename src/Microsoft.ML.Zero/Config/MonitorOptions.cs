using Microsoft.ML.Zero.Config;
namespace Microsoft.ML.Zero;

/// <summary>
/// Where a metrics monitor writes (DeepSpeed's <c>tensorboard</c> and <c>csv_monitor</c> blocks): into
/// <see cref="OutputPath"/>/<see cref="JobName"/>, from the process that holds rank 0, once per optimizer step.
/// </summary>
public sealed class MonitorOptions
{
    /// <summary>Write the metrics [<c>enabled</c>].</summary>
    public bool Enabled;

    /// <summary>The parent folder of the job's folder; empty means the working directory [<c>output_path</c>].</summary>
    public string OutputPath = "";

    /// <summary>The job's folder under <see cref="OutputPath"/> [<c>job_name</c>].</summary>
    public string JobName = "DeepSpeedJobName";

    /// <summary>The folder the monitor writes into.</summary>
    public string Folder => Path.GetFullPath(Path.Combine(OutputPath.Length == 0 ? "." : OutputPath, JobName));

    internal void Validate(string prefix)
    {
        OptionCheck.Require(OutputPath is not null, prefix + nameof(OutputPath), "null", "a folder, or empty for the working directory");
        // The monitor writes into OutputPath/JobName: "..", "." or a separator (either OS's: configs travel) would put
        // its files somewhere else.
        OptionCheck.Require(!string.IsNullOrWhiteSpace(JobName) && JobName is not ("." or "..") &&
            JobName.IndexOfAny(new[] { '/', '\\' }) < 0 && JobName.IndexOfAny(Path.GetInvalidFileNameChars()) < 0,
            prefix + nameof(JobName), JobName ?? "null", "one folder name: not \".\" or \"..\", no path separator or character invalid in a file name");
    }
}
