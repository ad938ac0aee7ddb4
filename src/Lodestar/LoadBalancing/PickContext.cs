namespace Lodestar.LoadBalancing;

/// <summary>
/// What a picker knows about the request attempt it chooses an endpoint for: the request, the endpoints already tried
/// for it, and an optional precomputed hash. Passed by reference (<see langword="in"/>), so new members cost callers
/// nothing and a pick stays allocation-free.
/// </summary>
/// <remarks>
/// A default instance (no request) is valid: hash policies then pick at random. Integrations that do not speak
/// <see cref="HttpRequestMessage"/> (gRPC metadata, an xDS route's hash policy) set <see cref="RequestHash"/> instead.
/// </remarks>
public readonly struct PickContext
{
    /// <summary>Initializes a context for a request.</summary>
    /// <param name="request">The outgoing request, or <see langword="null"/> when there is none.</param>
    public PickContext(HttpRequestMessage? request)
    {
        Request = request;
    }

    /// <summary>Gets the outgoing request (headers, options and cookies feed hash keys), or <see langword="null"/>.</summary>
    public HttpRequestMessage? Request { get; init; }

    /// <summary>
    /// Gets the endpoints already tried for this request, oldest first, or <see langword="null"/> on a first attempt.
    /// A picker may use it to prefer another endpoint; the balancer never returns one of them, whatever the picker says.
    /// </summary>
    public IReadOnlyList<EndpointState>? Attempted { get; init; }

    /// <summary>
    /// Gets a hash of the request computed by the caller, or <see langword="null"/> to let hash policies extract the
    /// key from <see cref="Request"/> as configured (<see cref="LoadBalancingOptions.HashKeyHeader"/> and the others).
    /// When set it wins over every configured key.
    /// </summary>
    public ulong? RequestHash { get; init; }

    /// <summary>Gets whether <paramref name="endpoint"/> is in <see cref="Attempted"/>.</summary>
    /// <param name="endpoint">The endpoint to look for (by reference).</param>
    /// <returns><see langword="true"/> when the endpoint was already tried for this request.</returns>
    public bool WasAttempted(EndpointState endpoint)
    {
        var attempted = Attempted;
        if (attempted is null)
        {
            return false;
        }

        for (var i = 0; i < attempted.Count; i++)
        {
            if (ReferenceEquals(attempted[i], endpoint))
            {
                return true;
            }
        }

        return false;
    }
}
