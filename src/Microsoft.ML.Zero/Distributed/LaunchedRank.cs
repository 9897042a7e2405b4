namespace Microsoft.ML.Zero.Distributed;

/// <summary>
/// The communicator of the rank whose code is running inside <c>ZeroEngine.Launch</c>, so that code it calls (an engine
/// being initialized, a model seeding its dropout) finds its rank without being handed it.
/// </summary>
internal static class LaunchedRank
{
    // Flows into tasks and awaits started by the rank's code.
    private static readonly AsyncLocal<ICommunicator?> Current = new();

    /// <summary>The running rank's communicator, or null outside a launch.</summary>
    public static ICommunicator? Communicator => Current.Value;

    /// <summary>Runs <paramref name="rankMain"/> as the rank of <paramref name="communicator"/>.</summary>
    public static void Run(ICommunicator communicator, Action rankMain)
    {
        Current.Value = communicator;
        try
        {
            rankMain();
        }
        finally
        {
            Current.Value = null;
        }
    }
}
