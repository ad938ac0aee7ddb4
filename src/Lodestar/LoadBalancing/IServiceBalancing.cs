using Lodestar.Http;

namespace Lodestar.LoadBalancing;

/// <summary>
/// Lets a caller that does not send its requests through the Lodestar <see cref="HttpClient"/> handler (a gRPC
/// channel's balancer, a proxy) pick endpoints with Lodestar's policies and feed each attempt's outcome back, so that
/// health (outlier detection, breakers, active checks), in-flight counts and latency statistics work exactly as on the
/// handler path. Registered by <c>AddLodestar()</c>.
/// </summary>
public interface IServiceBalancing
{
    /// <summary>
    /// Gets the balancer of a service for a policy and a client's health settings, waiting for the service's first
    /// endpoint set when it is new. Callers with equal settings share one health stage (ejections, breakers, checks)
    /// with every <see cref="HttpClient"/> of those settings.
    /// </summary>
    /// <param name="serviceName">The logical service name.</param>
    /// <param name="sourceName">The endpoint source, or <see langword="null"/> for the client's <see cref="LodestarClientOptions.Source"/> or the default.</param>
    /// <param name="policyName">The policy (see <see cref="LoadBalancingPolicies"/>), or <see langword="null"/> for the client's <see cref="LodestarClientOptions.Policy"/> or the default.</param>
    /// <param name="clientOptions">The client's options (health overrides), or <see langword="null"/> for the service's settings alone.</param>
    /// <param name="clientName">The client's name, for errors and logs, or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the wait for the first endpoint set.</param>
    /// <returns>The balancer; completes synchronously once it exists and has endpoints.</returns>
    /// <exception cref="Lodestar.Discovery.EndpointResolutionException">No source accepts the service, or no endpoint set arrived in time.</exception>
    /// <exception cref="InvalidOperationException">The policy is not registered.</exception>
    ValueTask<BalancedService> GetServiceAsync(string serviceName, string? sourceName = null, string? policyName = null, LodestarClientOptions? clientOptions = null,
        string? clientName = null, CancellationToken cancellationToken = default);
}
