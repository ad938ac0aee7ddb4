using Lodestar.LoadBalancing;
using Lodestar.Resilience.Internal;

namespace Lodestar.Health.Internal;

/// <summary>How one attempt ended, as outlier detection and circuit breakers see it.</summary>
internal enum AttemptOutcome
{
    /// <summary>A response below 500.</summary>
    Success,

    /// <summary>A 5xx response other than 502, 503 and 504.</summary>
    ServerError,

    /// <summary>A 502, 503 or 504 response, or a local-origin failure (connect error, broken connection, timeout).</summary>
    GatewayFailure,
}

/// <summary>
/// Health bookkeeping of one <see cref="EndpointState"/>: outlier counters, ejection history, active-check streaks and
/// the circuit breaker. Lives exactly as long as its endpoint state (held in a <c>ConditionalWeakTable</c>).
/// </summary>
internal sealed class EndpointHealth(EndpointState state, CircuitBreaker? breaker)
{
    public EndpointState State { get; } = state;

    public CircuitBreaker? Breaker { get; } = breaker;

    // Updated with Interlocked on the request path.
    public int ConsecutiveServerErrors;
    public int ConsecutiveGatewayFailures;
    public long IntervalRequests;
    public long IntervalSuccesses;

    // Guarded by the owning ServiceHealth's gate.
    public long EjectedAt;
    public int EjectionMultiplier;
    public bool EjectedThisInterval;

    // Touched only by the active checker, one check per endpoint at a time.
    public int CheckSuccesses;
    public int CheckFailures;
    public bool Checked;

    // The timer that moves an open breaker to half-open.
    public ITimer? BreakerTimer;
}
