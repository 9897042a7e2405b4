namespace Microsoft.ML.Zero.Distributed;

/// <summary>
/// Runs one function per rank, each on its own thread with its own communicator, and returns their results.
/// The first rank to fail aborts the group, so the others stop promptly; that first failure is rethrown. A rank busy
/// outside any collective never sees the abort: after the first failure the others get the communication timeout to
/// end, and the failure is rethrown naming the ranks still running (their threads are background threads).
/// </summary>
internal static class InProcessLauncher
{
    public static T[] Run<T>(int worldSize, TimeSpan timeout, Func<ICommunicator, T> rankMain, string timeoutOption = "the communication timeout")
    {
        var group = new InProcessGroup(worldSize, timeout, timeoutOption);
        var results = new T[worldSize];
        var failures = new Exception?[worldSize];
        var threads = new Thread[worldSize];
        long firstFailure = 0;
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
                    Interlocked.CompareExchange(ref firstFailure, Environment.TickCount64, 0);
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
        var stillRunning = new List<int>();
        for (int rank = 0; rank < worldSize; rank++)
        {
            while (!threads[rank].Join(TimeSpan.FromMilliseconds(100)))
            {
                long failedAt = Interlocked.Read(ref firstFailure);
                if (failedAt != 0 && Environment.TickCount64 - failedAt > timeout.TotalMilliseconds)
                {
                    stillRunning = Enumerable.Range(0, worldSize).Where(r => threads[r].IsAlive).ToList();
                    break;
                }
            }
            if (stillRunning.Count > 0)
                break;
        }

        // Report the cause, not the ranks that merely stopped because of it.
        int failed = Array.FindIndex(failures, f => f is not null and not ZeroCommunicationException);
        if (failed < 0)
            failed = Array.FindIndex(failures, f => f is not null);
        // A cancellation stops every rank at the same step: the caller sees it as ML.NET's trainers show it.
        if (failed >= 0 && failures[failed] is OperationCanceledException cancelled)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(cancelled);
        if (failed >= 0)
            throw new ZeroRankFailedException(failed, worldSize, failures[failed]!, stillRunning);
        return results;
    }
}
