namespace Lodestar.LoadBalancing.Internal;

/// <summary>
/// Envoy's slow-start ramp for one picker: an endpoint that joined less than the window ago gets
/// <c>weight × max(minimum, (elapsed / window) ^ (1 / aggression))</c>.
/// </summary>
/// <remarks>
/// Built only when some endpoint is inside its window when the picker is built; once <see cref="EndsAt"/> has passed
/// every factor is 1 and pickers skip the clock read.
/// </remarks>
internal sealed class SlowStart
{
    private readonly TimeProvider _timeProvider;
    private readonly double _window;
    private readonly double _inverseAggression;
    private readonly double _minimum;

    private SlowStart(TimeProvider timeProvider, double window, double aggression, double minimum, long endsAt)
    {
        _timeProvider = timeProvider;
        _window = window;
        _inverseAggression = 1.0 / aggression;
        _minimum = minimum;
        EndsAt = endsAt;
    }

    /// <summary>Gets the timestamp after which no endpoint of the picker is ramping.</summary>
    public long EndsAt { get; }

    /// <summary>Creates the ramp for a picker, or returns <see langword="null"/> when no endpoint is ramping now.</summary>
    public static SlowStart? TryCreate(LoadBalancingContext context)
    {
        var options = context.Options;
        if (options.SlowStartWindow <= TimeSpan.Zero)
        {
            return null;
        }

        var clock = context.TimeProvider;
        var window = (long)(options.SlowStartWindow.TotalSeconds * clock.TimestampFrequency);
        var now = clock.GetTimestamp();
        var endsAt = long.MinValue;
        foreach (var endpoint in context.Endpoints)
        {
            endsAt = Math.Max(endsAt, endpoint.AddedTimestamp + window);
        }

        return endsAt <= now
            ? null
            : new SlowStart(clock, window, Math.Clamp(options.SlowStartAggression, 0.1, 10), Math.Clamp(options.SlowStartMinimumWeightPercent, 1, 100) / 100, endsAt);
    }

    /// <summary>Reads the clock; returns <see langword="false"/> once the ramp is over for every endpoint.</summary>
    public bool IsActive(out long now)
    {
        now = _timeProvider.GetTimestamp();
        return now < EndsAt;
    }

    /// <summary>Gets the weight factor of an endpoint at <paramref name="now"/>, in (0, 1].</summary>
    public double Factor(EndpointState endpoint, long now)
    {
        var elapsed = now - endpoint.AddedTimestamp;
        if (elapsed >= _window)
        {
            return 1;
        }

        var fraction = Math.Max(elapsed, 1) / _window;
        if (_inverseAggression != 1)
        {
            fraction = Math.Pow(fraction, _inverseAggression);
        }

        return Math.Max(_minimum, fraction);
    }
}
