namespace Microsoft.ML.Zero.Distributed;

/// <summary>
/// Runs one function per rank, each on its own thread with its own communicator, and returns their results.
/// The first rank to fail aborts the group, so the others stop promptly; that first failure is rethrown.
/// </summary>
internal static class InProcessLauncher
{
    public static T[] Run<T>(int worldSize, TimeSpan timeout, Func<ICommunicator, T> rankMain, string timeoutOption = "the communication timeout")
    {
        var group = new InProcessGroup(worldSize, timeout, timeoutOption);
        var results = new T[worldSize];
        var failures = new Exception?[worldSize];
        var threads = new Thread[worldSize];
        for (int rank = 0; rank < worldSize; rank++)
        {
            int thisRank = rank;
            // Deep autograd graphs recurse on the calling thread: give rank threads the main thread's 8 MiB stack.
            threads[rank] = new Thread(() =>
            {
                try
                {
                    using var communicator = new InProcessCommunicator(group, thisRank);
                    results[thisRank] = rankMain(communicator);
                }
                catch (Exception exception)
                {
                    failures[thisRank] = exception;
                    group.Abort(thisRank, exception);
                }
            }, maxStackSize: 8 * 1024 * 1024)
            {
                Name = $"Microsoft.ML.Zero rank {thisRank}",
                IsBackground = true,
            };
        }
        foreach (var thread in threads)
            thread.Start();
        foreach (var thread in threads)
            thread.Join();

        // Report the cause, not the ranks that merely stopped because of it.
        int failed = Array.FindIndex(failures, f => f is not null and not ZeroCommunicationException);
        if (failed < 0)
            failed = Array.FindIndex(failures, f => f is not null);
        if (failed >= 0)
            throw new ZeroRankFailedException(failed, worldSize, failures[failed]!);
        return results;
    }
}
