using System.ComponentModel.DataAnnotations;

namespace Lodestar.Discovery;

/// <summary>
/// How a discovery loop waits between failures: capped exponential backoff with full jitter that starts over once the
/// loop has gone <see cref="ResetAfter"/> without a failure. Every source binds it the same way, under its own
/// section's <c>Backoff</c> key (for example <c>Lodestar:Kubernetes:Backoff:InitialDelay</c>).
/// </summary>
/// <remarks>
/// The defaults are client-go's reflector backoff (<c>NewExponentialBackoffManager(800ms, 30s, 2m, 2.0, 1.0)</c>):
/// the n-th delay in a row is drawn uniformly from [0, min(<see cref="MaxDelay"/>,
/// <see cref="InitialDelay"/> × 2ⁿ)] with a floor of 50 ms (or <see cref="InitialDelay"/> when smaller), so that many
/// clients of one registry do not come back at the same moment and a failing loop never spins.
/// </remarks>
public sealed class BackoffOptions
{
    /// <summary>The default <see cref="InitialDelay"/>: 800 ms, as client-go's reflector.</summary>
    public static readonly TimeSpan DefaultInitialDelay = TimeSpan.FromMilliseconds(800);

    /// <summary>The default <see cref="MaxDelay"/>: 30 s, as client-go's reflector.</summary>
    public static readonly TimeSpan DefaultMaxDelay = TimeSpan.FromSeconds(30);

    /// <summary>The default <see cref="ResetAfter"/>: 2 minutes, as client-go's reflector.</summary>
    public static readonly TimeSpan DefaultResetAfter = TimeSpan.FromMinutes(2);

    /// <summary>Gets or sets the ceiling of the first delay. Default 800 ms; range 1 ms to 1 hour.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "01:00:00")]
    public TimeSpan InitialDelay { get; set; } = DefaultInitialDelay;

    /// <summary>Gets or sets the ceiling no delay exceeds. Default 30 s; range 1 ms to 1 hour, and at least <see cref="InitialDelay"/>.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "01:00:00")]
    public TimeSpan MaxDelay { get; set; } = DefaultMaxDelay;

    /// <summary>
    /// Gets or sets how long the loop must go without a failure for the next failure to count as the first again.
    /// Default 2 minutes; range 1 ms to 1 day, and more than <see cref="MaxDelay"/> (otherwise every failure would
    /// start over and the delay would never grow).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "1.00:00:00")]
    public TimeSpan ResetAfter { get; set; } = DefaultResetAfter;

    /// <summary>Copies the values of another instance into this one.</summary>
    /// <param name="other">The values to copy.</param>
    public void CopyFrom(BackoffOptions other)
    {
        ArgumentNullException.ThrowIfNull(other);
        InitialDelay = other.InitialDelay;
        MaxDelay = other.MaxDelay;
        ResetAfter = other.ResetAfter;
    }

    /// <summary>Returns the first problem with these values, naming the setting under <paramref name="path"/>, or <see langword="null"/>.</summary>
    /// <param name="path">The configuration path of this instance, for the message (for example <c>Lodestar:Consul:Backoff</c>).</param>
    /// <returns>A message, or <see langword="null"/> when the values are valid.</returns>
    public string? Validate(string path)
    {
        if (InitialDelay <= TimeSpan.Zero || InitialDelay > TimeSpan.FromHours(1))
        {
            return $"{path}:{nameof(InitialDelay)} must be between 1 ms and 1 hour (was {InitialDelay}).";
        }

        if (MaxDelay < InitialDelay || MaxDelay > TimeSpan.FromHours(1))
        {
            return $"{path}:{nameof(MaxDelay)} must be at least {nameof(InitialDelay)} ({InitialDelay}) and at most 1 hour (was {MaxDelay}).";
        }

        if (ResetAfter <= MaxDelay || ResetAfter > TimeSpan.FromDays(1))
        {
            return $"{path}:{nameof(ResetAfter)} must be longer than {nameof(MaxDelay)} ({MaxDelay}) and at most 1 day (was {ResetAfter}).";
        }

        return null;
    }
}
