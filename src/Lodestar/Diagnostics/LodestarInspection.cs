namespace Lodestar.Diagnostics;

/// <summary>An immutable snapshot of the services this process calls, taken by <see cref="ILodestarInspector.Inspect"/>.</summary>
public sealed record LodestarInspection
{
    /// <summary>Gets when the snapshot was taken (the <see cref="TimeProvider"/> clock).</summary>
    public required DateTimeOffset Timestamp { get; init; }

    /// <summary>Gets the time between two samples of <see cref="EndpointInspection.RecentLatencies"/>.</summary>
    public required TimeSpan SampleInterval { get; init; }

    /// <summary>Gets one entry per (service, source, health settings, policy) a client uses, ordered by service.</summary>
    public required IReadOnlyList<ServiceInspection> Services { get; init; }

    /// <summary>Gets the most recent events, oldest first (a bounded ring: older events are dropped).</summary>
    public required IReadOnlyList<LodestarEvent> Events { get; init; }
}

/// <summary>One service as one policy balances it: its source, panic state and endpoints.</summary>
public sealed record ServiceInspection
{
    /// <summary>Gets the service name.</summary>
    public required string Service { get; init; }

    /// <summary>Gets the load-balancing policy.</summary>
    public required string Policy { get; init; }

    /// <summary>Gets whether the balancer routes over unhealthy endpoints because too few are healthy (Envoy's panic mode).</summary>
    public required bool InPanic { get; init; }

    /// <summary>Gets the fraction of healthy endpoints below which panic mode starts.</summary>
    public required double PanicThreshold { get; init; }

    /// <summary>Gets the number of endpoints that may take traffic now.</summary>
    public required int HealthyEndpoints { get; init; }

    /// <summary>Gets the status of the source that feeds the service.</summary>
    public required SourceInspection Source { get; init; }

    /// <summary>Gets the service's endpoints, routable ones first, then those the registry drains (weight 0).</summary>
    public required IReadOnlyList<EndpointInspection> Endpoints { get; init; }
}

/// <summary>The status of the source that feeds one service.</summary>
public sealed record SourceInspection
{
    /// <summary>Gets the source's name (<c>kubernetes</c>, <c>consul</c>, <c>configuration</c>, ...).</summary>
    public required string Name { get; init; }

    /// <summary>Gets the version of the current endpoint set; 0 before the first.</summary>
    public required long SetVersion { get; init; }

    /// <summary>Gets when the current endpoint set was published, or <see langword="null"/> before the first.</summary>
    public DateTimeOffset? LastUpdate { get; init; }

    /// <summary>Gets the last error the source reported since its last good answer, redacted; <see langword="null"/> when it is healthy.</summary>
    public string? LastError { get; init; }

    /// <summary>Gets when <see cref="LastError"/> was reported.</summary>
    public DateTimeOffset? LastErrorAt { get; init; }

    /// <summary>Gets how many times the source's watch was restarted (re-list, re-watch after a failure, loop restart).</summary>
    public required long Reconnects { get; init; }
}

/// <summary>One endpoint of a service: what the registry says, its health, and its load.</summary>
public sealed record EndpointInspection
{
    /// <summary>Gets the endpoint's <c>host:port</c>.</summary>
    public required string Address { get; init; }

    /// <summary>Gets the scheme the registry gave, or <see langword="null"/>.</summary>
    public string? Scheme { get; init; }

    /// <summary>Gets the zone, or <see langword="null"/>.</summary>
    public string? Zone { get; init; }

    /// <summary>Gets the priority level (0 is the most preferred).</summary>
    public required int Priority { get; init; }

    /// <summary>Gets the weight the registry gave; 0 means the registry drains it.</summary>
    public required int Weight { get; init; }

    /// <summary>Gets the endpoint's metadata.</summary>
    public required IReadOnlyDictionary<string, string> Metadata { get; init; }

    /// <summary>Gets what the registry says: <c>serving</c>, or <c>draining</c> (weight 0 or terminating).</summary>
    public required string RegistryStatus { get; init; }

    /// <summary>Gets whether the endpoint takes no new traffic because the registry drains it.</summary>
    public required bool Draining { get; init; }

    /// <summary>Gets whether the endpoint may take traffic now (healthy by active checks, not ejected, breaker not open, not draining).</summary>
    public required bool Healthy { get; init; }

    /// <summary>Gets the active check state: <c>off</c>, <c>pending</c> (not checked yet), <c>passing</c> or <c>failing</c>.</summary>
    public required string ActiveCheck { get; init; }

    /// <summary>Gets the current outlier ejection, or <see langword="null"/>.</summary>
    public EjectionInspection? Ejection { get; init; }

    /// <summary>Gets the circuit breaker state: <c>closed</c>, <c>open</c> or <c>half_open</c>.</summary>
    public required string Breaker { get; init; }

    /// <summary>Gets the slow-start weight factor in (0, 1) while the endpoint ramps up, or <see langword="null"/> when it does not.</summary>
    public double? SlowStartFactor { get; init; }

    /// <summary>Gets the attempts in flight.</summary>
    public required int InFlight { get; init; }

    /// <summary>Gets the attempts sent since the endpoint was first seen.</summary>
    public required long Requests { get; init; }

    /// <summary>Gets the failed attempts (transport error or 5xx) since the endpoint was first seen.</summary>
    public required long Failures { get; init; }

    /// <summary>Gets the latency estimate (peak EWMA when a policy measures it, else the last attempt's latency), or <see langword="null"/> before the first attempt.</summary>
    public TimeSpan? Latency { get; init; }

    /// <summary>Gets the fraction of attempts over about the last minute that succeeded, or <see langword="null"/> without attempts.</summary>
    public double? SuccessRate { get; init; }

    /// <summary>Gets the endpoint's share of the service's attempts over about the last minute, in [0, 1].</summary>
    public required double Share { get; init; }

    /// <summary>
    /// Gets the latency in milliseconds at each sample over the last minutes, oldest first, one per
    /// <see cref="LodestarInspection.SampleInterval"/>; <see langword="null"/> where nothing was measured yet.
    /// </summary>
    public required IReadOnlyList<double?> RecentLatencies { get; init; }
}

/// <summary>An outlier ejection as seen at inspection time.</summary>
public sealed record EjectionInspection
{
    /// <summary>Gets why the endpoint was ejected: one of <see cref="Health.EjectionReasons"/>.</summary>
    public required string Reason { get; init; }

    /// <summary>Gets when the endpoint was ejected.</summary>
    public required DateTimeOffset Since { get; init; }

    /// <summary>Gets how long is left until the ejection ends (the endpoint returns at the next interval after that).</summary>
    public required TimeSpan TimeLeft { get; init; }

    /// <summary>Gets the ejection multiplier (1 for a first ejection).</summary>
    public required int Multiplier { get; init; }
}
