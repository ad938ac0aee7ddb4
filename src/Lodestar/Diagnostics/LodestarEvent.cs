namespace Lodestar.Diagnostics;

/// <summary>What happened in a <see cref="LodestarEvent"/>.</summary>
public enum LodestarEventKind
{
    /// <summary>The source added an endpoint (or several: see the detail).</summary>
    EndpointAdded,

    /// <summary>The source removed an endpoint (or several: see the detail).</summary>
    EndpointRemoved,

    /// <summary>Outlier detection ejected an endpoint; the detail names the reason and duration.</summary>
    EndpointEjected,

    /// <summary>An ejected endpoint returned.</summary>
    EndpointReturned,

    /// <summary>An endpoint's circuit breaker opened.</summary>
    BreakerOpened,

    /// <summary>An endpoint's circuit breaker let probes through (half-open).</summary>
    BreakerHalfOpened,

    /// <summary>An endpoint's circuit breaker closed.</summary>
    BreakerClosed,

    /// <summary>Active health checks marked an endpoint unhealthy.</summary>
    HealthCheckFailed,

    /// <summary>Active health checks marked an endpoint healthy again.</summary>
    HealthCheckPassed,

    /// <summary>A retry was not made because the service's retry budget was spent (at most one event per service per second).</summary>
    RetryBudgetExhausted,

    /// <summary>The source reported an error; the last good endpoint set stays in force. The detail is redacted.</summary>
    SourceError,

    /// <summary>The source answered again after an error.</summary>
    SourceRecovered,
}

/// <summary>One event of a service, timestamped by the <see cref="TimeProvider"/> clock.</summary>
public sealed record LodestarEvent
{
    /// <summary>Gets when it happened.</summary>
    public required DateTimeOffset Timestamp { get; init; }

    /// <summary>Gets what happened.</summary>
    public required LodestarEventKind Kind { get; init; }

    /// <summary>Gets the service.</summary>
    public required string Service { get; init; }

    /// <summary>Gets the source, or <see langword="null"/> when the event is not about one.</summary>
    public string? Source { get; init; }

    /// <summary>Gets the endpoint's <c>host:port</c>, or <see langword="null"/> when the event is not about one endpoint.</summary>
    public string? Endpoint { get; init; }

    /// <summary>Gets more about it (a reason, an error message without secrets), or <see langword="null"/>.</summary>
    public string? Detail { get; init; }
}
