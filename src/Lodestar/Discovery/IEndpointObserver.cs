using Lodestar.Endpoints;

namespace Lodestar.Discovery;

/// <summary>Receives what an <see cref="IEndpointSource"/> learns about its service.</summary>
public interface IEndpointObserver
{
    /// <summary>Publishes the complete current set of routable endpoints; an empty list means the service has none.</summary>
    /// <param name="endpoints">Every routable endpoint of the service now. The observer takes its own copy.</param>
    void OnEndpoints(IReadOnlyList<DiscoveredEndpoint> endpoints);

    /// <summary>Reports a failure (unreachable registry, malformed answer, bad entry). The last published set stays in force.</summary>
    /// <param name="error">What went wrong; its message names the registry and must not contain secrets.</param>
    void OnError(Exception error);
}
