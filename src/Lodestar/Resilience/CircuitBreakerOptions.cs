namespace Lodestar.Resilience;

/// <summary>
/// Per-endpoint circuit breakers with gobreaker/Polly semantics: a closed breaker counts outcomes in a sampling
/// window and opens when the failure ratio reaches <see cref="FailureRatio"/> over at least
/// <see cref="MinimumThroughput"/> attempts; an open breaker takes the endpoint out of picking for
/// <see cref="BreakDuration"/>; then it is half-open and lets <see cref="HalfOpenMaxProbes"/> probe requests through,
/// closing when they all succeed and opening again on any failure. Off by default.
/// </summary>
/// <remarks>
/// Breakers are per service: when several clients share a service and balancing policy, the settings of the first
/// client to send a request apply. Failures are 5xx responses and transport errors.
/// </remarks>
public sealed class CircuitBreakerOptions
{
    /// <summary>Gets or sets whether breakers run. Default <see langword="false"/>.</summary>
    public bool Enabled { get; set; }

    /// <summary>Gets or sets the failure ratio that opens the breaker. Default 0.5; range above 0 to 1.</summary>
    public double FailureRatio { get; set; } = 0.5;

    /// <summary>Gets or sets the fewest attempts in the sampling window before the breaker may open. Default 20; range 1 to 1,000,000.</summary>
    public int MinimumThroughput { get; set; } = 20;

    /// <summary>Gets or sets the sampling window (tumbling, as gobreaker's interval). Default 10 seconds; range 10 ms to 1 hour.</summary>
    public TimeSpan SamplingDuration { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Gets or sets how long the breaker stays open before it lets probes through. Default 5 seconds; range 10 ms to 1 hour.</summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Gets or sets how many requests a half-open breaker lets through (gobreaker's <c>MaxRequests</c>). Default 1; range 1 to 1,000.</summary>
    public int HalfOpenMaxProbes { get; set; } = 1;
}
