namespace Lodestar.Testing;

/// <summary>Runs the same work on several threads of their own, released together, so that it really runs at once.</summary>
public static class AtOnce
{
    private static readonly TimeSpan s_bound = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Runs <paramref name="body"/> on <paramref name="threads"/> dedicated threads, each starting once all have started,
    /// and returns what each gave back; fails if they do not all start, or finish, within 30 s.
    /// </summary>
    public static Task<T[]> RunAsync<T>(int threads, Func<T> body)
    {
        var start = new Barrier(threads);
        var running = Enumerable.Range(0, threads).Select(_ => Task.Factory.StartNew(
            () =>
            {
                if (!start.SignalAndWait(s_bound))
                {
                    throw new TimeoutException($"Not all {threads} threads started within {s_bound.TotalSeconds:0} s.");
                }

                return body();
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default));
        return WhenAllAsync(Task.WhenAll(running), start);
    }

    /// <summary>As <see cref="RunAsync{T}(int, Func{T})"/>, for work that gives nothing back.</summary>
    public static Task RunAsync(int threads, Action body) => RunAsync(threads, () =>
    {
        body();
        return true;
    });

    private static async Task<T[]> WhenAllAsync<T>(Task<T[]> all, Barrier start)
    {
        using (start)
        {
            return await all.WaitAsync(s_bound).ConfigureAwait(false);
        }
    }
}
