using Microsoft.ML.Runtime;
using Microsoft.ML.Zero.Training;

namespace Microsoft.ML.Zero;

/// <summary>A trainer's log lines, written only by the process that holds rank 0 so an MPI job logs each line once.</summary>
internal sealed class RankZeroLog(IChannel channel, RankLayout layout)
{
    public void Info(string message)
    {
        if (layout.IsMainProcess)
            channel.Info(message);
    }

    public void Warning(string message)
    {
        if (layout.IsMainProcess)
            channel.Warning(message);
    }
}
