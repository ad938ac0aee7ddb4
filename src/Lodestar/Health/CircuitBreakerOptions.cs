namespace Lodestar.Health;

/// <summary>
/// Per-endpoint circuit breakers with gobreaker/Polly semantics: a closed breaker counts outcomes in a sampling
/// window and opens when the failure ratio reaches <see cref="FailureRatio"/> over at least
/// <see cref="MinimumThroughput"/> attempts; an open breaker takes the endpoint out of picking for
/// <see cref="BreakDuration"/>; then it is half-open and lets <see cref="HalfOpenMaxProbes"/> probe requests through,
/// closing when they all succeed and opening again on any failure. Off by default.
/// </summary>
/// <remarks>
/// Configured per service (<c>Lodestar:Services:&lt;service&gt;:CircuitBreaker</c>, or
/// <c>Configure&lt;CircuitBreakerOptions&gt;("service", ...)</c>) and overridden per client
/// (<c>Lodestar:Clients:&lt;client&gt;:CircuitBreaker</c>, or <c>LodestarClientOptions.CircuitBreaker</c>): a property the client sets
/// wins, any other comes from the service, then the default. Clients whose resulting settings are equal share one
/// health stage for the service; clients whose settings differ each get their own, as two Envoy clusters over the same
/// endpoints would. Failures are 5xx responses and transport errors.
/// </remarks>
public sealed class CircuitBreakerOptions
{
    private bool? _enabled;
    private double? _failureRatio;
    private int? _minimumThroughput;
    private TimeSpan? _samplingDuration;
    private TimeSpan? _breakDuration;
    private int? _halfOpenMaxProbes;

    /// <summary>Gets or sets whether breakers run. Default <see langword="false"/>.</summary>
    public bool Enabled
    {
        get => _enabled ?? false;
        set => _enabled = value;
    }

    /// <summary>Gets or sets the failure ratio that opens the breaker. Default 0.5; range above 0 to 1.</summary>
    public double FailureRatio
    {
        get => _failureRatio ?? 0.5;
        set => _failureRatio = value;
    }

    /// <summary>Gets or sets the fewest attempts in the sampling window before the breaker may open. Default 20; range 1 to 1,000,000.</summary>
    public int MinimumThroughput
    {
        get => _minimumThroughput ?? 20;
        set => _minimumThroughput = value;
    }

    /// <summary>Gets or sets the sampling window (tumbling, as gobreaker's interval). Default 10 seconds; range 10 ms to 1 hour.</summary>
    public TimeSpan SamplingDuration
    {
        get => _samplingDuration ?? TimeSpan.FromSeconds(10);
        set => _samplingDuration = value;
    }

    /// <summary>Gets or sets how long the breaker stays open before it lets probes through. Default 5 seconds; range 10 ms to 1 hour.</summary>
    public TimeSpan BreakDuration
    {
        get => _breakDuration ?? TimeSpan.FromSeconds(5);
        set => _breakDuration = value;
    }

    /// <summary>Gets or sets how many requests a half-open breaker lets through (gobreaker's <c>MaxRequests</c>). Default 1; range 1 to 1,000.</summary>
    public int HalfOpenMaxProbes
    {
        get => _halfOpenMaxProbes ?? 1;
        set => _halfOpenMaxProbes = value;
    }

    /// <summary>Copies the settings (and which of them were set).</summary>
    internal CircuitBreakerOptions Clone() => (CircuitBreakerOptions)MemberwiseClone();

    /// <summary>Copies every setting of <paramref name="other"/>, and whether it was set.</summary>
    internal void CopyFrom(CircuitBreakerOptions other)
    {
        _enabled = other._enabled;
        _failureRatio = other._failureRatio;
        _minimumThroughput = other._minimumThroughput;
        _samplingDuration = other._samplingDuration;
        _breakDuration = other._breakDuration;
        _halfOpenMaxProbes = other._halfOpenMaxProbes;
    }

    /// <summary>Takes every setting that <paramref name="overrides"/> had set explicitly, leaving the others.</summary>
    internal void OverrideWith(CircuitBreakerOptions overrides)
    {
        _enabled = overrides._enabled ?? _enabled;
        _failureRatio = overrides._failureRatio ?? _failureRatio;
        _minimumThroughput = overrides._minimumThroughput ?? _minimumThroughput;
        _samplingDuration = overrides._samplingDuration ?? _samplingDuration;
        _breakDuration = overrides._breakDuration ?? _breakDuration;
        _halfOpenMaxProbes = overrides._halfOpenMaxProbes ?? _halfOpenMaxProbes;
    }
}
