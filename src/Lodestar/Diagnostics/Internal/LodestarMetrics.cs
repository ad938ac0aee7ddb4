using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Lodestar.Diagnostics.Internal;

/// <summary>
/// Lodestar's instruments, created once from <see cref="IMeterFactory"/>. Tags are bounded: service, endpoint
/// address, source, policy, outcome and reason, never anything per request.
/// </summary>
/// <remarks>
/// Names follow OpenTelemetry's conventions (dotted, lower case, unit in <c>unit</c> not in the name, <c>s</c> for
/// durations, annotations such as <c>{request}</c> for counts). No semantic convention covers client-side balancing, so
/// everything lives under <c>lodestar.*</c>; the transport's own <c>http.client.*</c> metrics come from
/// <c>System.Net.Http</c>.
/// </remarks>
internal sealed class LodestarMetrics
{
    private static readonly InstrumentAdvice<double> s_durationAdvice = new()
    {
        HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    };

    private readonly ConcurrentDictionary<IDiscoveryMetricsSource, byte> _discoverySources = new();

    public LodestarMetrics(IMeterFactory meterFactory, LodestarEventLog? events = null)
    {
        Events = events;
        var meter = meterFactory.Create(LodestarDiagnostics.Name);

        // Client: attempts (one per endpoint tried) and logical requests (one per SendAsync).
        Attempts = meter.CreateCounter<long>("lodestar.client.attempts", "{attempt}", "Request attempts sent to an endpoint, by outcome.");
        Retries = meter.CreateCounter<long>("lodestar.client.retries", "{retry}", "Attempts retried on another endpoint, by reason.");
        AttemptDuration = meter.CreateHistogram<double>("lodestar.client.attempt.duration", "s", "Duration of one attempt until response headers or failure.",
            advice: s_durationAdvice);
        NoEndpoints = meter.CreateCounter<long>("lodestar.client.no_endpoints", "{request}", "Requests failed fast because the service had no endpoint left to try.");
        BreakerTransitions = meter.CreateCounter<long>("lodestar.client.circuit_breaker.transitions", "{transition}", "Circuit breaker state changes, by new state.");
        Rejected = meter.CreateCounter<long>("lodestar.client.rejected", "{request}", "Requests failed fast by backpressure, rate limiting or open circuit breakers, by reason.");
        Hedges = meter.CreateCounter<long>("lodestar.client.hedges", "{attempt}", "Hedged attempts sent to another endpoint.");
        HedgesSkipped = meter.CreateCounter<long>("lodestar.client.hedges.skipped", "{attempt}",
            "Hedges not sent because the process's thread pool had work waiting for a thread when the delay passed.");
        HealthChecks = meter.CreateCounter<long>("lodestar.endpoint.health_checks", "{check}", "Active health checks, by result.");
        Requests = meter.CreateCounter<long>("lodestar.client.requests", "{request}", "Logical requests (all their attempts together), by outcome.");
        RequestDuration = meter.CreateHistogram<double>("lodestar.client.request.duration", "s", "Duration of a logical request, retries included, until response headers or failure.",
            advice: s_durationAdvice);
        RetryBudgetExhausted = meter.CreateCounter<long>("lodestar.client.retry_budget.exhausted", "{retry}", "Retries not made because the service's retry budget was spent.");
        Picks = meter.CreateCounter<long>("lodestar.client.picks", "{pick}", "Picks made by a load-balancing policy, first tries and retries (a pick that finds no endpoint counts too).");

        // Endpoint health.
        Ejections = meter.CreateCounter<long>("lodestar.endpoint.ejections", "{ejection}", "Endpoints ejected by outlier detection, by reason.");
        HealthTransitions = meter.CreateCounter<long>("lodestar.endpoint.health_transitions", "{transition}", "Endpoints changing health state (healthy or unhealthy).");

        // Discovery.
        DiscoveryUpdates = meter.CreateCounter<long>("lodestar.discovery.updates", "{update}", "Endpoint sets changed by a source.");
        DiscoveryErrors = meter.CreateCounter<long>("lodestar.discovery.errors", "{error}", "Errors reported by a source; the last good set stays in force.");
        DiscoveryReconnects = meter.CreateCounter<long>("lodestar.discovery.reconnects", "{reconnect}", "Times a source's watch was restarted (re-list, re-watch or loop restart).");
        meter.CreateObservableGauge("lodestar.discovery.staleness", ObserveStaleness, "s",
            "Time since the source last confirmed the service's endpoint set (a snapshot, changed or not).");
        meter.CreateObservableGauge("lodestar.endpoints", ObserveEndpoints, "{endpoint}", "Endpoints in the service's current set.");
    }

    /// <summary>Gets the ring of recent events the inspector reports, or <see langword="null"/> when none is kept.</summary>
    public LodestarEventLog? Events { get; }

    public Counter<long> BreakerTransitions { get; }

    public Counter<long> Rejected { get; }

    public Counter<long> Hedges { get; }

    public Counter<long> HedgesSkipped { get; }

    public Counter<long> HealthChecks { get; }

    public Counter<long> Attempts { get; }

    public Counter<long> Retries { get; }

    public Histogram<double> AttemptDuration { get; }

    public Counter<long> NoEndpoints { get; }

    public Counter<long> Requests { get; }

    public Histogram<double> RequestDuration { get; }

    public Counter<long> RetryBudgetExhausted { get; }

    public Counter<long> Picks { get; }

    public Counter<long> Ejections { get; }

    public Counter<long> HealthTransitions { get; }

    public Counter<long> DiscoveryUpdates { get; }

    public Counter<long> DiscoveryErrors { get; }

    public Counter<long> DiscoveryReconnects { get; }

    /// <summary>
    /// Records one attempt with its <c>lodestar.*</c> tags and the HTTP client semantic-convention attributes:
    /// <c>server.address</c>/<c>server.port</c> of the endpoint, <c>http.request.method</c>, <c>url.scheme</c>,
    /// <c>http.response.status_code</c> when a response arrived, <c>error.type</c> when it failed, and
    /// <c>http.request.resend_count</c> from the second attempt on.
    /// </summary>
    public void RecordAttempt(string service, Endpoints.DiscoveredEndpoint endpoint, in AttemptTags attempt, double seconds)
    {
        if (!Attempts.Enabled && !AttemptDuration.Enabled)
        {
            // Nobody listens: build no tags (past eight, a TagList allocates).
            return;
        }

        var tags = new TagList
        {
            { "lodestar.service", service },
            { "lodestar.endpoint", endpoint.Address },
            { "lodestar.outcome", attempt.Outcome },
            { HttpSemanticConventions.RequestMethod, attempt.Method },
            { HttpSemanticConventions.ServerAddress, endpoint.Host },
            { HttpSemanticConventions.ServerPort, endpoint.PortTag },
            { HttpSemanticConventions.UrlScheme, attempt.Scheme },
        };
        AddResult(ref tags, attempt.Status, attempt.ErrorType, attempt.Number - 1);
        Attempts.Add(1, tags);
        AttemptDuration.Record(seconds, tags);
    }

    /// <summary>
    /// Records an attempt made outside the HTTP handler (a gRPC channel's balancer): the Lodestar attributes and
    /// <c>server.address</c>/<c>server.port</c>; the HTTP ones are the transport's to record.
    /// </summary>
    public void RecordAttempt(string service, Endpoints.DiscoveredEndpoint endpoint, string outcome, double seconds)
    {
        if (!Attempts.Enabled && !AttemptDuration.Enabled)
        {
            return;
        }

        var tags = new TagList
        {
            { "lodestar.service", service },
            { "lodestar.endpoint", endpoint.Address },
            { "lodestar.outcome", outcome },
            { HttpSemanticConventions.ServerAddress, endpoint.Host },
            { HttpSemanticConventions.ServerPort, endpoint.PortTag },
        };
        Attempts.Add(1, tags);
        AttemptDuration.Record(seconds, tags);
    }

    public void RecordRetry(string service, string reason)
        => Retries.Add(1, new KeyValuePair<string, object?>("lodestar.service", service), new KeyValuePair<string, object?>("lodestar.retry.reason", reason));

    /// <summary>Gets whether anyone listens to the logical request's count or duration (<see cref="RecordRequest"/>).</summary>
    public bool RecordsRequests => Requests.Enabled || RequestDuration.Enabled;

    /// <summary>
    /// Records a logical request: <paramref name="outcome"/> is <c>success</c>, <c>server_error</c> or a failure reason.
    /// The semantic-convention attributes describe the logical request: <c>server.address</c>/<c>server.port</c> are
    /// the logical URI's (<c>orders</c>, 80), <c>http.request.resend_count</c> counts the attempts after the first
    /// (retries and hedges).
    /// </summary>
    public void RecordRequest(string service, Uri logical, string method, string outcome, int status, string? errorType, int resends, TimeSpan elapsed)
    {
        if (!RecordsRequests)
        {
            return;
        }

        var tags = new TagList
        {
            { "lodestar.service", service },
            { "lodestar.outcome", outcome },
            { HttpSemanticConventions.RequestMethod, method },
            { HttpSemanticConventions.ServerAddress, logical.IdnHost },
            { HttpSemanticConventions.UrlScheme, logical.Scheme },
        };
        if (logical.Port > 0)
        {
            // A scheme Uri has no default port for (https+http://orders) leaves the port unknown: no server.port then.
            tags.Add(HttpSemanticConventions.ServerPort, HttpSemanticConventions.Box(logical.Port));
        }

        AddResult(ref tags, status, errorType, resends);
        Requests.Add(1, tags);
        RequestDuration.Record(elapsed.TotalSeconds, tags);
    }

    private static void AddResult(ref TagList tags, int status, string? errorType, int resends)
    {
        if (status > 0)
        {
            tags.Add(HttpSemanticConventions.ResponseStatusCode, HttpSemanticConventions.Box(status));
        }

        if (errorType is not null)
        {
            tags.Add(HttpSemanticConventions.ErrorType, errorType);
        }

        if (resends > 0)
        {
            tags.Add(HttpSemanticConventions.ResendCount, HttpSemanticConventions.Box(resends));
        }
    }

    public void RecordRetryBudgetExhausted(string service)
    {
        RetryBudgetExhausted.Add(1, new KeyValuePair<string, object?>("lodestar.service", service));
        Events?.AppendRetryBudgetExhausted(service);
    }

    public void RecordPick(string service, string policy)
    {
        if (Picks.Enabled)
        {
            Picks.Add(1, new KeyValuePair<string, object?>("lodestar.service", service), new KeyValuePair<string, object?>("lodestar.policy", policy));
        }
    }

    public void RecordBreakerTransition(string service, string endpoint, Health.CircuitState state)
        => BreakerTransitions.Add(1, new KeyValuePair<string, object?>("lodestar.service", service), new KeyValuePair<string, object?>("lodestar.endpoint", endpoint),
            new KeyValuePair<string, object?>("lodestar.circuit_breaker.state", state switch
            {
                Health.CircuitState.Open => "open",
                Health.CircuitState.HalfOpen => "half_open",
                _ => "closed",
            }));

    public void RecordRejected(string service, string reason)
        => Rejected.Add(1, new KeyValuePair<string, object?>("lodestar.service", service), new KeyValuePair<string, object?>("lodestar.rejection.reason", reason));

    public void RecordHedge(string service)
        => Hedges.Add(1, new KeyValuePair<string, object?>("lodestar.service", service));

    public void RecordHedgeSkipped(string service)
        => HedgesSkipped.Add(1, new KeyValuePair<string, object?>("lodestar.service", service));

    public void RecordHealthCheck(string service, string endpoint, bool passed)
        => HealthChecks.Add(1, new KeyValuePair<string, object?>("lodestar.service", service), new KeyValuePair<string, object?>("lodestar.endpoint", endpoint),
            new KeyValuePair<string, object?>("lodestar.health_check.result", passed ? "passed" : "failed"));

    public void RecordEjection(string service, string endpoint, string reason)
        => Ejections.Add(1, new KeyValuePair<string, object?>("lodestar.service", service), new KeyValuePair<string, object?>("lodestar.endpoint", endpoint),
            new KeyValuePair<string, object?>("lodestar.ejection.reason", reason));

    /// <summary>Records an endpoint becoming healthy or unhealthy.</summary>
    public void RecordHealthTransition(string service, string endpoint, bool healthy)
        => HealthTransitions.Add(1, new KeyValuePair<string, object?>("lodestar.service", service), new KeyValuePair<string, object?>("lodestar.endpoint", endpoint),
            new KeyValuePair<string, object?>("lodestar.health.state", healthy ? "healthy" : "unhealthy"));

    public void RecordDiscoveryUpdate(string service, string source)
        => DiscoveryUpdates.Add(1, new KeyValuePair<string, object?>("lodestar.service", service), new KeyValuePair<string, object?>("lodestar.source", source));

    public void RecordDiscoveryError(string service, string source)
        => DiscoveryErrors.Add(1, new KeyValuePair<string, object?>("lodestar.service", service), new KeyValuePair<string, object?>("lodestar.source", source));

    public void RecordDiscoveryReconnect(string service, string source)
        => DiscoveryReconnects.Add(1, new KeyValuePair<string, object?>("lodestar.service", service), new KeyValuePair<string, object?>("lodestar.source", source));

    /// <summary>Adds a watcher to the discovery gauges (endpoints, staleness) until <see cref="Untrack"/>.</summary>
    public void Track(IDiscoveryMetricsSource source) => _discoverySources.TryAdd(source, 0);

    public void Untrack(IDiscoveryMetricsSource source) => _discoverySources.TryRemove(source, out _);

    private IEnumerable<Measurement<double>> ObserveStaleness()
    {
        foreach (var source in _discoverySources.Keys)
        {
            if (source.Staleness is { } staleness)
            {
                yield return new Measurement<double>(staleness.TotalSeconds, Tags(source));
            }
        }
    }

    private IEnumerable<Measurement<int>> ObserveEndpoints()
    {
        foreach (var source in _discoverySources.Keys)
        {
            if (source.EndpointCount is { } count)
            {
                yield return new Measurement<int>(count, Tags(source));
            }
        }
    }

    private static TagList Tags(IDiscoveryMetricsSource source) => new()
    {
        { "lodestar.service", source.ServiceName },
        { "lodestar.source", source.SourceName },
    };
}

/// <summary>What one attempt's measurements say about it.</summary>
/// <param name="Number">The attempt's number, from 1 (resend count + 1).</param>
/// <param name="Outcome">The <c>lodestar.outcome</c>: <c>success</c>, <c>server_error</c> or a failure reason.</param>
/// <param name="Method">The request method as the conventions name it (<see cref="HttpSemanticConventions.Method"/>).</param>
/// <param name="Scheme">The scheme the attempt used.</param>
/// <param name="Status">The response status, or 0 when none arrived.</param>
/// <param name="ErrorType">The <c>error.type</c>, or <see langword="null"/> for a success.</param>
internal readonly record struct AttemptTags(int Number, string Outcome, string Method, string Scheme, int Status, string? ErrorType);

/// <summary>What the discovery gauges read from one watcher.</summary>
internal interface IDiscoveryMetricsSource
{
    string ServiceName { get; }

    string SourceName { get; }

    /// <summary>Gets the number of endpoints in the current set, or <see langword="null"/> before the first.</summary>
    int? EndpointCount { get; }

    /// <summary>Gets the time since the source last confirmed the set, or <see langword="null"/> before the first.</summary>
    TimeSpan? Staleness { get; }
}
