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
    }

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
}
