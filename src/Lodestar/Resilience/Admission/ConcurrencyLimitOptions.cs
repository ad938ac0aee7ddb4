namespace Lodestar.Resilience.Admission;

/// <summary>
/// Backpressure per service and client (Envoy's <c>max_requests</c> and <c>max_pending_requests</c>): at most
/// <see cref="MaxConcurrentRequests"/> requests are in flight, at most <see cref="MaxPendingRequests"/> more wait for
/// a slot, and any further request fails at once with a <see cref="ServiceOverloadedException"/> instead of queuing
/// without bound. Off by default.
/// </summary>
/// <remarks>
/// <para>A request holds its slot until its response headers arrive (or it fails), retries and backoffs included.</para>
/// <para>
/// Besides each client's own (<see cref="Http.LodestarClientOptions.ConcurrencyLimit"/>), the options are read by
/// service name as named options: a source that supplies per-service settings (an xDS cluster's circuit breakers)
/// configures them there, and a client that sets no <see cref="MaxConcurrentRequests"/> of its own gets the service's
/// limit, each client with its own slots. A client's own limit wins.
/// </para>
/// </remarks>
public sealed class ConcurrencyLimitOptions
{
    /// <summary>Gets or sets the most requests in flight, or <see langword="null"/> (default) for no limit. Range 1 to 1,000,000.</summary>
    public int? MaxConcurrentRequests { get; set; }

    /// <summary>Gets or sets how many requests may wait for a slot, oldest served first. Default 0 (fail fast); range 0 to 1,000,000.</summary>
    public int MaxPendingRequests { get; set; }

    /// <summary>
    /// Gets or sets the most retries in flight (Envoy's <c>max_retries</c>), or <see langword="null"/> (default) for no
    /// cap. A retry counts from when it is decided until its attempt has a response or fails; a retry over the cap is not
    /// made and the request ends with the outcome of its last attempt. It applies over and above the retry budget
    /// (<see cref="Retry.RetryOptions.BudgetRatio"/>). A client's own value wins over the service's. Range 0 to 1,000,000.
    /// </summary>
    public int? MaxConcurrentRetries { get; set; }
}
