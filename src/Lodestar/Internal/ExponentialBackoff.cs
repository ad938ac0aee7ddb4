namespace Lodestar.Internal;

/// <summary>
/// Capped exponential backoff with full jitter: the n-th delay is uniform in [0, min(cap, initial × 2ⁿ)], with a small
/// floor so a failing loop never spins. Not thread-safe: one instance per loop.
/// </summary>
internal sealed class ExponentialBackoff
{
    private readonly TimeSpan _initial;
    private readonly TimeSpan _max;
    private readonly TimeSpan _floor;
    private readonly RandomSource _random;
    private int _failures;

    public ExponentialBackoff(TimeSpan initial, TimeSpan max, RandomSource? random = null, TimeSpan? floor = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(initial, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, initial);
        _initial = initial;
        _max = max;
        _floor = floor ?? TimeSpan.FromMilliseconds(Math.Min(50, initial.TotalMilliseconds));
        _random = random ?? RandomSource.Shared;
    }

    /// <summary>Gets the number of failures since the last <see cref="Reset"/>.</summary>
    public int Failures => _failures;

    /// <summary>Records a failure and returns how long to wait before the next try.</summary>
    public TimeSpan NextDelay()
    {
        var exponent = Math.Min(_failures, 30);
        _failures++;
        var ceiling = Math.Min(_max.TotalMilliseconds, _initial.TotalMilliseconds * Math.Pow(2, exponent));
        var delay = Math.Max(_floor.TotalMilliseconds, _random.NextDouble() * ceiling);
        return TimeSpan.FromMilliseconds(delay);
    }

    /// <summary>Forgets past failures after a healthy period.</summary>
    public void Reset() => _failures = 0;
}
