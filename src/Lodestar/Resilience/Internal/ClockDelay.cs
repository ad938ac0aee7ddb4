namespace Lodestar.Resilience.Internal;

/// <summary>Waits for a delay on a <see cref="TimeProvider"/>, never ending early.</summary>
/// <remarks>
/// <see cref="Task.Delay(TimeSpan, TimeProvider, CancellationToken)"/> counts whole milliseconds and completes at once
/// for less than one, so a 0.5 ms hedging delay or backoff would become no delay at all. Here each wait is rounded up
/// to the next whole millisecond and the elapsed time is checked on the clock's timestamps: the wait is at least the
/// delay and at most one millisecond more, with no spinning.
/// </remarks>
internal static class ClockDelay
{
    private const long TicksPerMillisecond = TimeSpan.TicksPerMillisecond;

    /// <summary>Completes once <paramref name="delay"/> has passed by <paramref name="timeProvider"/>; at once for zero or less.</summary>
    public static Task WaitAsync(TimeProvider timeProvider, TimeSpan delay, CancellationToken cancellationToken)
        => delay <= TimeSpan.Zero ? Task.CompletedTask : WaitCoreAsync(timeProvider, timeProvider.GetTimestamp(), delay, cancellationToken);

    /// <summary>Rounds a positive delay up to whole milliseconds, the granularity of timers.</summary>
    public static TimeSpan RoundUp(TimeSpan delay)
        => TimeSpan.FromTicks((delay.Ticks + TicksPerMillisecond - 1) / TicksPerMillisecond * TicksPerMillisecond);

    private static async Task WaitCoreAsync(TimeProvider timeProvider, long startedAt, TimeSpan delay, CancellationToken cancellationToken)
    {
        // Bounded: each round waits at least the whole remainder, so a second round happens only if a timer fired early.
        for (var remaining = delay; remaining > TimeSpan.Zero; remaining = delay - timeProvider.GetElapsedTime(startedAt))
        {
            await Task.Delay(RoundUp(remaining), timeProvider, cancellationToken).ConfigureAwait(false);
        }
    }
}
