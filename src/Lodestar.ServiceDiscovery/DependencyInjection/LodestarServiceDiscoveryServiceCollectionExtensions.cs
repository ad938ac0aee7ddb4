using Lodestar.ServiceDiscovery.Internal;
using Microsoft.Extensions.ServiceDiscovery;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Lodestar as an endpoint provider of Microsoft.Extensions.ServiceDiscovery.</summary>
public static class LodestarServiceDiscoveryServiceCollectionExtensions
{
    /// <summary>
    /// Makes Microsoft.Extensions.ServiceDiscovery (and what builds on it: <c>AddServiceDiscovery()</c> HTTP clients,
    /// YARP's <c>AddServiceDiscoveryDestinationResolver()</c>, Aspire) resolve services from Lodestar's sources, following
    /// each change Lodestar sees. Adds Lodestar with <c>AddLodestar()</c> when it is not there yet. Safe to call more than once.
    /// </summary>
    /// <remarks>
    /// The provider is placed before the library's own providers, whether they were added before or after this call,
    /// so a service a Lodestar source serves is answered by Lodestar; one no Lodestar source serves falls through to the
    /// library's configuration and pass-through providers. Named endpoints (<c>https+http://_grpc.orders</c>) ask
    /// Lodestar for <c>_grpc.orders</c>, which its configuration source reads from <c>Services:orders:grpc</c>. Endpoints
    /// with a scheme are offered as URIs; the query's scheme list (<c>https+http</c>) keeps the most preferred scheme
    /// present. Each endpoint's feature collection carries its <see cref="Lodestar.Endpoints.DiscoveredEndpoint"/>
    /// (weight, zone, metadata). The library then picks among the endpoints itself (round robin): for Lodestar's
    /// policies, health and retries, call through an <c>AddLodestar()</c> client instead.
    /// </remarks>
    /// <param name="services">The service collection.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddLodestarServiceEndpointProvider(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddLodestar();
        foreach (var existing in services)
        {
            if (existing.ServiceType == typeof(IServiceEndpointProviderFactory) && existing.ImplementationType == typeof(LodestarServiceEndpointProviderFactory))
            {
                return services;
            }
        }

        // The library asks its providers in registration order and each skips a query an earlier one answered, so
        // Lodestar goes before the first one registered (the pass-through provider answers every query).
        var descriptor = ServiceDescriptor.Singleton<IServiceEndpointProviderFactory, LodestarServiceEndpointProviderFactory>();
        for (var i = 0; i < services.Count; i++)
        {
            if (services[i].ServiceType == typeof(IServiceEndpointProviderFactory))
            {
                services.Insert(i, descriptor);
                return services;
            }
        }

        services.Add(descriptor);
        return services;
    }
}
