namespace Lodestar.Http;

/// <summary>Where an <see cref="IRequestRouter"/> sends one request, and the route's overrides of the client's settings.</summary>
public sealed class RequestRoute
{
    /// <summary>Initializes a route to a service.</summary>
    /// <param name="serviceName">The service (the name its endpoints and per-service options go by).</param>
    /// <exception cref="ArgumentException"><paramref name="serviceName"/> is null or empty.</exception>
    public RequestRoute(string serviceName)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ServiceName = serviceName;
    }

    /// <summary>Gets the service the request goes to.</summary>
    public string ServiceName { get; }

    /// <summary>
    /// Gets the overall deadline of the request, replacing the client's <see cref="Resilience.Retry.RetryOptions.Timeout"/>;
    /// <see cref="TimeSpan.Zero"/> means no deadline; <see langword="null"/> (default) keeps the client's.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is negative.</exception>
    public TimeSpan? Timeout
    {
        get;
        init
        {
            if (value < TimeSpan.Zero)
            {
                throw new ArgumentOutOfRangeException(nameof(Timeout), value, "A route timeout cannot be negative.");
            }

            field = value;
        }
    }

    /// <summary>Gets the route's retry policy, replacing the client's, or <see langword="null"/> (default) to keep the client's.</summary>
    public RouteRetryPolicy? Retry { get; init; }

    /// <summary>
    /// Gets the hash key of the request for <c>ring-hash</c>, <c>maglev</c> and sticky traffic splits, or
    /// <see langword="null"/> (default) for none. A key the caller set in
    /// <see cref="LoadBalancing.LoadBalancingRequestOptions.HashKey"/> wins.
    /// </summary>
    public string? HashKey { get; init; }
}

/// <summary>
/// A route's retry policy: how many attempts, which status codes are retried, the backoff between attempts and the
/// timeout of each. Build it once per route and share it between requests.
/// </summary>
/// <remarks>
/// Failures that never reached a server and the safety rules (idempotent methods, replayable bodies) and retry budget
/// of the client apply as for the client's own policy.
/// </remarks>
public sealed class RouteRetryPolicy
{
    private readonly bool[] _retryStatus = new bool[600];

    /// <summary>Initializes a retry policy.</summary>
    /// <param name="maxAttempts">Attempts per request, the first included: 1 (no retry) to 10.</param>
    /// <param name="retryOnStatusCodes">The response status codes that are retried (100 to 599).</param>
    /// <param name="backoffBase">The base of the capped, jittered exponential backoff (0 to 1 minute).</param>
    /// <param name="backoffMax">The cap of the backoff (at least <paramref name="backoffBase"/>, at most 10 minutes).</param>
    /// <param name="perTryTimeout">The timeout of each attempt, or <see langword="null"/> for none.</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of its range.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="retryOnStatusCodes"/> is null.</exception>
    public RouteRetryPolicy(int maxAttempts, IEnumerable<int> retryOnStatusCodes, TimeSpan backoffBase, TimeSpan backoffMax, TimeSpan? perTryTimeout = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxAttempts, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxAttempts, 10);
        ArgumentNullException.ThrowIfNull(retryOnStatusCodes);
        ArgumentOutOfRangeException.ThrowIfLessThan(backoffBase, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(backoffBase, TimeSpan.FromMinutes(1));
        ArgumentOutOfRangeException.ThrowIfLessThan(backoffMax, backoffBase);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(backoffMax, TimeSpan.FromMinutes(10));
        if (perTryTimeout is { } perTry)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(perTry, TimeSpan.Zero, nameof(perTryTimeout));
        }

        var codes = new List<int>();
        foreach (var code in retryOnStatusCodes)
        {
            if (code is < 100 or > 599)
            {
                throw new ArgumentOutOfRangeException(nameof(retryOnStatusCodes), code, "A retried status code must be between 100 and 599.");
            }

            if (!_retryStatus[code])
            {
                _retryStatus[code] = true;
                codes.Add(code);
            }
        }

        codes.Sort();
        MaxAttempts = maxAttempts;
        RetryOnStatusCodes = codes;
        BackoffBase = backoffBase;
        BackoffMax = backoffMax;
        PerTryTimeout = perTryTimeout;
    }

    /// <summary>Gets the attempts per request, the first included.</summary>
    public int MaxAttempts { get; }

    /// <summary>Gets the retried status codes, ascending.</summary>
    public IReadOnlyList<int> RetryOnStatusCodes { get; }

    /// <summary>Gets the base of the backoff.</summary>
    public TimeSpan BackoffBase { get; }

    /// <summary>Gets the cap of the backoff.</summary>
    public TimeSpan BackoffMax { get; }

    /// <summary>Gets the timeout of each attempt, or <see langword="null"/> for none.</summary>
    public TimeSpan? PerTryTimeout { get; }

    internal bool IsRetryableStatus(int statusCode) => (uint)statusCode < (uint)_retryStatus.Length && _retryStatus[statusCode];
}
