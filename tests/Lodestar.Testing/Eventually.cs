using Microsoft.Extensions.Time.Testing;

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

    /// <summary>
    /// Moves <paramref name="time"/> on by <paramref name="step"/> until <paramref name="condition"/> is true (looked at
    /// before each step), failing with <paramref name="because"/> after <paramref name="timeout"/>: how a test waits for
    /// work that a fake clock's timers start on another thread.
    /// </summary>
    public static Task TrueAdvancingAsync(FakeTimeProvider time, TimeSpan step, Func<bool> condition, TimeSpan timeout, string because)
        => TrueAsync(() =>
        {
            if (condition())
            {
                return true;
            }

            time.Advance(step);
            return false;
        }, timeout, because);

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
