using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Lodestar.Diagnostics.Internal;

/// <summary>
/// Lodestar's instruments, created once from <see cref="IMeterFactory"/>. Tags are bounded: service, endpoint
/// address, policy and outcome, never anything per request.
/// </summary>
internal sealed class LodestarMetrics
{
    public LodestarMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(LodestarDiagnostics.Name);
        Attempts = meter.CreateCounter<long>("lodestar.client.attempts", "{attempt}", "Request attempts sent to an endpoint, by outcome.");
        Retries = meter.CreateCounter<long>("lodestar.client.retries", "{retry}", "Attempts retried on another endpoint, by reason.");
        AttemptDuration = meter.CreateHistogram<double>("lodestar.client.attempt.duration", "s", "Duration of one attempt until response headers or failure.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        NoEndpoints = meter.CreateCounter<long>("lodestar.client.no_endpoints", "{request}", "Requests failed fast because the service had no endpoint left to try.");
        Ejections = meter.CreateCounter<long>("lodestar.client.ejections", "{ejection}", "Endpoints ejected by outlier detection, by reason.");
        RetryBudgetExhausted = meter.CreateCounter<long>("lodestar.client.retry_budget.exhausted", "{retry}", "Retries not made because the retry budget was spent.");
        BreakerTransitions = meter.CreateCounter<long>("lodestar.client.circuit_breaker.transitions", "{transition}", "Circuit breaker state changes, by new state.");
        Rejected = meter.CreateCounter<long>("lodestar.client.rejected", "{request}", "Requests failed fast by backpressure, rate limiting or open circuit breakers, by reason.");
        Hedges = meter.CreateCounter<long>("lodestar.client.hedges", "{attempt}", "Hedged attempts sent to another endpoint.");
        HealthChecks = meter.CreateCounter<long>("lodestar.client.health_checks", "{check}", "Active health checks, by result.");
    }

    public Counter<long> Ejections { get; }

    public Counter<long> RetryBudgetExhausted { get; }

    public Counter<long> BreakerTransitions { get; }

    public Counter<long> Rejected { get; }

    public Counter<long> Hedges { get; }

    public Counter<long> HealthChecks { get; }

    public Counter<long> Attempts { get; }

    public Counter<long> Retries { get; }

    public Histogram<double> AttemptDuration { get; }

    public Counter<long> NoEndpoints { get; }

    public void RecordAttempt(string service, string endpoint, string outcome, double seconds)
    {
        var tags = new TagList
        {
            { "lodestar.service", service },
            { "lodestar.endpoint", endpoint },
            { "lodestar.outcome", outcome },
        };
        Attempts.Add(1, tags);
        AttemptDuration.Record(seconds, tags);
    }

    public void RecordRetry(string service, string reason)
        => Retries.Add(1, new KeyValuePair<string, object?>("lodestar.service", service), new KeyValuePair<string, object?>("lodestar.retry.reason", reason));

    public void RecordEjection(string service, string endpoint, string reason)
        => Ejections.Add(1, new KeyValuePair<string, object?>("lodestar.service", service), new KeyValuePair<string, object?>("lodestar.endpoint", endpoint),
            new KeyValuePair<string, object?>("lodestar.ejection.reason", reason));

    public void RecordRetryBudgetExhausted(string service)
        => RetryBudgetExhausted.Add(1, new KeyValuePair<string, object?>("lodestar.service", service));

    public void RecordBreakerTransition(string service, string endpoint, Resilience.Internal.CircuitState state)
        => BreakerTransitions.Add(1, new KeyValuePair<string, object?>("lodestar.service", service), new KeyValuePair<string, object?>("lodestar.endpoint", endpoint),
            new KeyValuePair<string, object?>("lodestar.circuit_breaker.state", state switch
            {
                Resilience.Internal.CircuitState.Open => "open",
                Resilience.Internal.CircuitState.HalfOpen => "half_open",
                _ => "closed",
            }));

    public void RecordRejected(string service, string reason)
        => Rejected.Add(1, new KeyValuePair<string, object?>("lodestar.service", service), new KeyValuePair<string, object?>("lodestar.rejection.reason", reason));

    public void RecordHedge(string service)
        => Hedges.Add(1, new KeyValuePair<string, object?>("lodestar.service", service));

    public void RecordHealthCheck(string service, string endpoint, bool passed)
        => HealthChecks.Add(1, new KeyValuePair<string, object?>("lodestar.service", service), new KeyValuePair<string, object?>("lodestar.endpoint", endpoint),
            new KeyValuePair<string, object?>("lodestar.health_check.result", passed ? "passed" : "failed"));
}
