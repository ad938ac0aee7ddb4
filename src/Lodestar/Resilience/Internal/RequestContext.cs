using Lodestar.Http;

namespace Lodestar.Resilience.Internal;

/// <summary>What every strategy of the pipeline needs to know about one logical request; copied by value, never allocated.</summary>
/// <param name="Request">The request (its URI is rewritten for each attempt).</param>
/// <param name="Logical">The logical URI the caller sent (<c>http://orders/path</c>).</param>
/// <param name="Route">The client's route to the service: balancer, health stage and the client's resilience state.</param>
/// <param name="Options">The client's options, read once for the request.</param>
/// <param name="Safe">Whether the request may be sent again after it may have reached a server (idempotent or opted in).</param>
/// <param name="Replayable">Whether the body can be sent again.</param>
/// <param name="Tally">Counts the attempts sent, for the request's <c>http.request.resend_count</c>.</param>
/// <param name="RouteRetry">The retry policy of the route an <see cref="IRequestRouter"/> chose, replacing the client's, or <see langword="null"/>.</param>
internal readonly record struct RequestContext(HttpRequestMessage Request, Uri Logical, ServiceRoute Route, LodestarClientOptions Options, bool Safe, bool Replayable,
    AttemptTally Tally, RouteRetryPolicy? RouteRetry = null)
{
    public string ServiceName => Route.ServiceName;

    /// <summary>Gets the attempts the request may make: the route's, else the client's.</summary>
    public int MaxAttempts => RouteRetry?.MaxAttempts ?? Options.MaxAttempts;

    /// <summary>Gets the timeout of each attempt: the route's when it has a retry policy, else the client's.</summary>
    public TimeSpan? PerTryTimeout => RouteRetry is { } route ? route.PerTryTimeout : Options.Retry.PerTryTimeout;

    /// <summary>Gets the base of the retry backoff: the route's, else the client's.</summary>
    public TimeSpan BackoffBase => RouteRetry?.BackoffBase ?? Options.Retry.BackoffBase;

    /// <summary>Gets the cap of the retry backoff: the route's, else the client's.</summary>
    public TimeSpan BackoffMax => RouteRetry?.BackoffMax ?? Options.Retry.BackoffMax;

    /// <summary>Returns whether a response status is retried: by the route's policy, else by the client's.</summary>
    public bool IsRetryableStatus(int statusCode) => RouteRetry?.IsRetryableStatus(statusCode) ?? Route.Resilience.IsRetryableStatus(statusCode);
}

/// <summary>The attempts one logical request has sent so far; hedged attempts count from several threads.</summary>
internal sealed class AttemptTally
{
    private int _attempts;

    /// <summary>Gets the attempts sent after the first: retries and hedges.</summary>
    public int Resends => Math.Max(0, Volatile.Read(ref _attempts) - 1);

    public void OnAttempt() => Interlocked.Increment(ref _attempts);
}
