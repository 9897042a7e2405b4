namespace Microsoft.ML.Zero;

/// <summary>What the process holding rank 0 shows on the console while a trainer runs. Log messages always go to <c>MLContext.Log</c>.</summary>
public enum ZeroProgress
{
    /// <summary>A live progress bar when standard output is a terminal; plain log lines when it is redirected.</summary>
    Auto,

    /// <summary>A live progress bar (epoch, step, loss, learning rate, loss scale, samples/s, time left).</summary>
    Bar,

    /// <summary>The trainer's log lines (every <c>steps_per_print</c> steps and after each epoch) on standard output.</summary>
    Lines,

    /// <summary>Nothing on the console.</summary>
    None,
}
