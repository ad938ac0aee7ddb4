namespace Lodestar.Health;

/// <summary>The state of an endpoint's circuit breaker (<see cref="CircuitBreakerOptions"/>).</summary>
public enum CircuitState
{
    /// <summary>Requests flow; outcomes are counted. Also the state of an endpoint whose service has no breakers.</summary>
    Closed,

    /// <summary>The endpoint takes no requests until the break duration has passed.</summary>
    Open,

    /// <summary>A limited number of probe requests decide whether the breaker closes or opens again.</summary>
    HalfOpen,
}
