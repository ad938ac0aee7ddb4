using Lodestar.Endpoints;

namespace Lodestar.Discovery;

/// <summary>
/// Answers "what are the endpoints of this service now" from a process-wide cache that keeps one watcher per
/// service and source.
/// </summary>
public interface IEndpointResolver
{
    /// <summary>Gets the current endpoint set, waiting for the first snapshot when the service is new.</summary>
    /// <param name="serviceName">The logical service name.</param>
    /// <param name="sourceName">The source to use, or <see langword="null"/> for the first registered source that accepts the service.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The current set; completes synchronously once the cache is warm.</returns>
    /// <exception cref="EndpointResolutionException">No source accepts the service, or no snapshot arrived within <see cref="LodestarOptions.ResolutionTimeout"/>.</exception>
    ValueTask<EndpointSet> GetEndpointsAsync(string serviceName, string? sourceName = null, CancellationToken cancellationToken = default);

    /// <summary>Subscribes to changes of a service's endpoint set and to source errors.</summary>
    /// <param name="serviceName">The logical service name.</param>
    /// <param name="sourceName">The source to use, or <see langword="null"/> for the default choice.</param>
    /// <param name="onChange">Called with each new set, and at once with the current set when there is one. Must not block.</param>
    /// <param name="onError">Called with each source error, or <see langword="null"/>.</param>
    /// <returns>A handle that ends the subscription when disposed.</returns>
    /// <exception cref="EndpointResolutionException">No source accepts the service.</exception>
    IDisposable Watch(string serviceName, string? sourceName, Action<EndpointSet> onChange, Action<Exception>? onError = null);
}
