namespace Lodestar.Benchmarks.Http;

/// <summary>Closed-loop callers for the concurrent benchmarks: each sends its GETs one after another.</summary>
internal static class ConcurrentCallers
{
    /// <summary>Sends <paramref name="perCaller"/> GETs of <paramref name="path"/> from each of <paramref name="callers"/> callers at once.</summary>
    public static Task RunAsync(HttpClient client, string path, int callers, int perCaller)
    {
        var running = new Task[callers];
        for (var i = 0; i < callers; i++)
        {
            running[i] = CallAsync(client, path, perCaller);
        }

        return Task.WhenAll(running);
    }

    private static async Task CallAsync(HttpClient client, string path, int requests)
    {
        // Leave the caller's context at once so the callers really run in parallel.
        await Task.Yield();
        for (var i = 0; i < requests; i++)
        {
            using var response = await client.GetAsync(path).ConfigureAwait(false);
            response.EnsureSuccessStatusCode();
        }
    }
}
