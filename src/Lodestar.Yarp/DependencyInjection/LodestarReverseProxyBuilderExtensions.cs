using Lodestar.Yarp.Internal;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Yarp.ReverseProxy.ServiceDiscovery;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Gives YARP clusters their destinations from Lodestar's sources.</summary>
public static class LodestarReverseProxyBuilderExtensions
{
    /// <summary>
    /// Resolves each cluster destination whose address names a service (<c>http://orders/</c>,
    /// <c>https+http://orders/</c>) to one destination per endpoint a Lodestar source knows, and re-resolves whenever
    /// that source publishes a change. Adds Lodestar with <c>AddLodestar()</c> when it is not there yet. Replaces the
    /// destination resolver registered before it.
    /// </summary>
    /// <remarks>
    /// Destinations whose host is an IP literal, <c>localhost</c>, or a name no Lodestar source serves are kept as
    /// configured; endpoints of weight 0 (draining) are left out. YARP then balances, health-checks and retries over the
    /// destinations with its own cluster settings; Lodestar's policies and outlier detection do not apply here.
    /// </remarks>
    /// <param name="builder">The reverse proxy builder.</param>
    /// <returns>The builder.</returns>
    public static IReverseProxyBuilder AddLodestarDestinationResolver(this IReverseProxyBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddLodestar();
        builder.Services.RemoveAll<IDestinationResolver>();
        builder.Services.AddSingleton<IDestinationResolver, LodestarDestinationResolver>();
        return builder;
    }
}
