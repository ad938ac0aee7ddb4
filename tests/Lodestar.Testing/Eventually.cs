namespace Lodestar.Testing;

/// <summary>Polls a condition until it holds or a deadline passes: the bounded way to wait for background work.</summary>
public static class Eventually
{
    /// <summary>Waits until <paramref name="condition"/> is true, failing with <paramref name="because"/> after <paramref name="timeout"/>.</summary>
    public static async Task TrueAsync(Func<bool> condition, TimeSpan timeout, string because)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Condition not met within {timeout.TotalSeconds:0.#} s: {because}");
            }

            await Task.Delay(10);
        }
    }

    /// <summary>Waits until the asynchronous <paramref name="condition"/> is true, failing with <paramref name="because"/> after <paramref name="timeout"/>.</summary>
    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string because)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Condition not met within {timeout.TotalSeconds:0.#} s: {because}");
            }

            await Task.Delay(10);
        }
    }
}
