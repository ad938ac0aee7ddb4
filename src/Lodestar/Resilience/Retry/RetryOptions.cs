namespace Lodestar.Resilience.Retry;

/// <summary>
/// When and how a request is retried on another endpoint. The number of endpoints one request may try is
/// <see cref="Http.LodestarClientOptions.MaxAttempts"/>.
/// </summary>
/// <remarks>
/// A request that never reached a server (refused or timed-out connect, HTTP/2 refused stream) is retried at once on
/// another endpoint whatever its method. Any other failure, and the status codes in <see cref="RetryOnStatusCodes"/>,
/// are retried only for idempotent methods or when the caller opted in (<see cref="RetryNonIdempotent"/> or
/// <see cref="LodestarRequestOptions.AllowRetries"/>), after a capped exponential backoff with full jitter, and only
/// while the retry budget allows.
/// </remarks>
public sealed class RetryOptions
{
    /// <summary>
    /// Gets or sets the response status codes that are retried, or <see langword="null"/> (default) for 502, 503 and
    /// 504. An empty list retries no status code.
    /// </summary>
    public IList<int>? RetryOnStatusCodes { get; set; }

    /// <summary>
    /// Gets or sets whether requests with non-idempotent methods (POST, PATCH) may be retried after they may have
    /// reached a server. Default <see langword="false"/>.
    /// </summary>
    public bool RetryNonIdempotent { get; set; }

    /// <summary>Gets or sets the base of the exponential backoff between retries. Default 25 ms (Envoy's); range 1 ms to 1 minute.</summary>
    public TimeSpan BackoffBase { get; set; } = TimeSpan.FromMilliseconds(25);

    /// <summary>Gets or sets the cap of the backoff. Default 250 ms (Envoy's 10 × base); at least <see cref="BackoffBase"/>, at most 5 minutes.</summary>
    public TimeSpan BackoffMax { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Gets or sets the longest <c>Retry-After</c> of a 429 or 503 response that is waited for before a retry; a response
    /// asking for longer is returned to the caller. Default 1 second; range 0 to 5 minutes.
    /// </summary>
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Gets or sets how long one attempt may wait for response headers before it is abandoned (and retried when
    /// allowed), or <see langword="null"/> (default) for no per-try limit. Range 1 ms to 10 minutes.
    /// </summary>
    public TimeSpan? PerTryTimeout { get; set; }

    /// <summary>
    /// Gets or sets the deadline of the whole request, all attempts and backoffs included, or <see langword="null"/>
    /// (default) to rely on <see cref="HttpClient.Timeout"/>. When it passes the request fails with a
    /// <see cref="TaskCanceledException"/> whose inner exception is a <see cref="TimeoutException"/>. Range 1 ms to 1 hour.
    /// </summary>
    public TimeSpan? Timeout { get; set; }

    /// <summary>
    /// Gets or sets the largest request body that is buffered so it can be sent again; larger or unsized streamed
    /// bodies are sent once (still retried when the connection was never established). Default 64 KiB; range 0 to 64 MiB.
    /// </summary>
    public int MaxBufferedBodyBytes { get; set; } = 64 * 1024;

    /// <summary>
    /// Gets or sets the retry budget: retries in <see cref="BudgetWindow"/> may not exceed this fraction of the requests
    /// in it (plus <see cref="BudgetMinRetriesPerSecond"/>), so an outage cannot multiply load. Default 0.2 (Envoy's
    /// and Finagle's 20 %); range 0 to 10.
    /// </summary>
    public double BudgetRatio { get; set; } = 0.2;

    /// <summary>
    /// Gets or sets the retries per second always allowed, so that services with little traffic can still retry.
    /// Default 3; range 0 to 100,000.
    /// </summary>
    public int BudgetMinRetriesPerSecond { get; set; } = 3;

    /// <summary>Gets or sets the sliding window over which requests and retries are counted. Default 10 seconds (Finagle's TTL); range 1 to 600 seconds.</summary>
    public TimeSpan BudgetWindow { get; set; } = TimeSpan.FromSeconds(10);
}
