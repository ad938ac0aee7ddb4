namespace Lodestar.Discovery;

/// <summary>
/// The delays of one retry loop, as <see cref="BackoffOptions"/> describes them: capped exponential growth with full
/// jitter, starting over once the loop has gone <see cref="BackoffOptions.ResetAfter"/> without a failure.
/// </summary>
/// <remarks>
/// The reset rule is client-go's <c>BackoffManager</c>: when the previous failure is older than
/// <see cref="BackoffOptions.ResetAfter"/>, the next failure counts as the first. A loop therefore never needs to say
/// when it became healthy. Not thread-safe: one instance per loop.
/// </remarks>
public sealed class Backoff
{
    private static readonly Func<double> s_random = Random.Shared.NextDouble;

    private readonly TimeSpan _initial;
    private readonly TimeSpan _max;
    private readonly TimeSpan _resetAfter;
    private readonly TimeSpan _floor;
    private readonly TimeProvider _timeProvider;
    private readonly Func<double> _random;
    private long _lastFailure;
    private int _failures;

    /// <summary>Initializes a new instance.</summary>
    /// <param name="options">The delays; copied, so later changes to the instance do not apply.</param>
    /// <param name="timeProvider">The clock the reset rule reads.</param>
    /// <param name="random">A source of numbers in [0, 1) for the jitter, or <see langword="null"/> for <see cref="Random.Shared"/>.</param>
    /// <exception cref="ArgumentException">The options are not valid (see <see cref="BackoffOptions.Validate"/>).</exception>
    public Backoff(BackoffOptions options, TimeProvider timeProvider, Func<double>? random = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(timeProvider);
        if (options.Validate(nameof(Backoff)) is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        _initial = options.InitialDelay;
        _max = options.MaxDelay;
        _resetAfter = options.ResetAfter;
        _floor = TimeSpan.FromMilliseconds(Math.Min(50, _initial.TotalMilliseconds));
        _timeProvider = timeProvider;
        _random = random ?? s_random;
    }

    /// <summary>Gets the number of failures counted since the backoff last started over.</summary>
    public int Failures => _failures;

    /// <summary>Records a failure and returns how long to wait before the next try.</summary>
    /// <returns>A delay in [floor, min(max, initial × 2ⁿ)], where n counts the failures before this one.</returns>
    public TimeSpan NextDelay()
    {
        var now = _timeProvider.GetTimestamp();
        if (_failures > 0 && _timeProvider.GetElapsedTime(_lastFailure, now) > _resetAfter)
        {
            _failures = 0;
        }

        _lastFailure = now;
        var exponent = Math.Min(_failures, 30);
        _failures++;
        var ceiling = Math.Min(_max.TotalMilliseconds, _initial.TotalMilliseconds * Math.Pow(2, exponent));
        var draw = Math.Clamp(_random(), 0, 1);
        return TimeSpan.FromMilliseconds(Math.Max(_floor.TotalMilliseconds, draw * ceiling));
    }

    /// <summary>Starts over at once, as if no failure had happened.</summary>
    public void Reset() => _failures = 0;
}
