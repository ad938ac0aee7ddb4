namespace Lodestar.Http;

/// <summary>
/// Chooses per request where a logical request goes: the service (for example an xDS cluster picked by a route
/// table) and the route's own deadline, retry policy and hash key. The Lodestar handler asks the registered routers
/// once per request, in registration order, before any endpoint is picked; the first route returned wins. Without a
/// router, or when every router returns <see langword="null"/>, the request goes to the service its URI names with
/// the client's own settings.
/// </summary>
/// <remarks>
/// Register an implementation as a singleton <see cref="IRequestRouter"/>. <see cref="RouteAsync"/> runs on the request
/// path: it should complete synchronously from a cache once warm and must not block. An exception it throws fails the
/// request with that exception; use it for a request that a route table says must fail.
/// </remarks>
public interface IRequestRouter
{
    /// <summary>Chooses the route of one request.</summary>
    /// <param name="request">The request, with its logical URI (<c>http://orders/path</c>).</param>
    /// <param name="serviceName">The service the URI names.</param>
    /// <param name="clientName">The name of the <see cref="HttpClient"/> that sends the request.</param>
    /// <param name="cancellationToken">The request's cancellation.</param>
    /// <returns>The route, or <see langword="null"/> to leave the request to the next router or to its service as named.</returns>
    ValueTask<RequestRoute?> RouteAsync(HttpRequestMessage request, string serviceName, string clientName, CancellationToken cancellationToken);
}
