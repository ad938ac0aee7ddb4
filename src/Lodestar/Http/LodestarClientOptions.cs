using System.ComponentModel.DataAnnotations;
using Lodestar.Health;
using Lodestar.Resilience;

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

    /// <summary>Gets the passive outlier detection settings of the services this client calls (on by default).</summary>
    public OutlierDetectionOptions OutlierDetection { get; } = new();

    /// <summary>Gets the active health check settings of the services this client calls (off by default).</summary>
    public HealthCheckOptions HealthChecks { get; } = new();

    /// <summary>Gets the per-endpoint circuit breaker settings (off by default).</summary>
    public CircuitBreakerOptions CircuitBreaker { get; } = new();

    /// <summary>Gets the hedging settings (off by default).</summary>
    public HedgingOptions Hedging { get; } = new();

    /// <summary>Gets the client-side rate limit per service (off by default).</summary>
    public RateLimitOptions RateLimit { get; } = new();

    /// <summary>Gets the per-service limits on concurrent and waiting requests (off by default).</summary>
    public ConcurrencyLimitOptions ConcurrencyLimit { get; } = new();
}
