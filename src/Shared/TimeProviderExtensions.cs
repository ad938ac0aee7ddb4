namespace Lodestar.Internal;

internal static class TimeProviderExtensions
{
    /// <summary>Delays through the time provider so tests control the clock.</summary>
    public static Task DelayAsync(this TimeProvider timeProvider, TimeSpan delay, CancellationToken cancellationToken)
        => delay <= TimeSpan.Zero ? Task.CompletedTask : Task.Delay(delay, timeProvider, cancellationToken);
}
