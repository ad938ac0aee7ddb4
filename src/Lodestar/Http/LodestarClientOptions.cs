using System.ComponentModel.DataAnnotations;
using Lodestar.Health;
using Lodestar.Resilience.Admission;
using Lodestar.Resilience.Hedging;
using Lodestar.Resilience.Retry;

namespace Lodestar.Http;

/// <summary>Per-<see cref="HttpClient"/> options of the Lodestar handler, named after the client.</summary>
public sealed class LodestarClientOptions
{
    /// <summary>Gets or sets the load-balancing policy, or <see langword="null"/> (default) for <see cref="LodestarOptions.DefaultPolicy"/>.</summary>
    public string? Policy { get; set; }

    /// <summary>Gets or sets the endpoint source, or <see langword="null"/> (default) for <see cref="LodestarOptions.DefaultSource"/>.</summary>
    public string? Source { get; set; }

    /// <summary>
    /// Gets or sets how many endpoints one request may try: 1 means no retry. A retry always goes to an endpoint not
    /// yet tried for the request; when and how it happens is set in <see cref="Retry"/>. Default 3; range 1 to 10.
    /// </summary>
    [Range(1, 10)]
    public int MaxAttempts { get; set; } = 3;

    /// <summary>
    /// Gets or sets the connect timeout of the default <see cref="SocketsHttpHandler"/>; a connect that takes longer
    /// counts as a refused connection and is retried elsewhere. Default 3 seconds; range 100 ms to 2 minutes.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.1", "00:02:00")]
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>Gets the retry settings: status codes, backoff, timeouts, body buffering and the retry budget.</summary>
    public RetryOptions Retry { get; } = new();

    /// <summary>
    /// Gets this client's overrides of the passive outlier detection settings of the services it calls (on by
    /// default). A property set here (in code or in <c>Lodestar:Clients:&lt;client&gt;:OutlierDetection</c>) wins over
    /// the service's <c>Lodestar:Services:&lt;service&gt;:OutlierDetection</c>; any other comes from the service.
    /// </summary>
    public OutlierDetectionOptions OutlierDetection { get; } = new();

    /// <summary>
    /// Gets this client's overrides of the active health check settings of the services it calls (off by default),
    /// merged with the service's <c>:HealthChecks</c> as <see cref="OutlierDetection"/> is.
    /// </summary>
    public HealthCheckOptions HealthChecks { get; } = new();

    /// <summary>
    /// Gets this client's overrides of the per-endpoint circuit breaker settings (off by default), merged with the
    /// service's <c>:CircuitBreaker</c> as <see cref="OutlierDetection"/> is.
    /// </summary>
    public CircuitBreakerOptions CircuitBreaker { get; } = new();

    /// <summary>Gets which gRPC statuses count as a failure of the endpoint for outlier detection and breakers (<c>UNAVAILABLE</c> by default).</summary>
    public GrpcStatusOptions Grpc { get; } = new();

    /// <summary>Gets the hedging settings (off by default).</summary>
    public HedgingOptions Hedging { get; } = new();

    /// <summary>Gets the client-side rate limit per service (off by default).</summary>
    public RateLimitOptions RateLimit { get; } = new();

    /// <summary>Gets the per-service limits on concurrent and waiting requests (off by default).</summary>
    public ConcurrencyLimitOptions ConcurrencyLimit { get; } = new();
}
