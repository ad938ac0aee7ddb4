using Lodestar.DependencyInjection;
using Lodestar.Discovery;
using Lodestar.Dns;
using Lodestar.Dns.Discovery.Internal;
using Lodestar.Dns.Internal;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the DNS endpoint source to Lodestar.</summary>
public static class DnsLodestarBuilderExtensions
{
    /// <summary>
    /// Adds the <c>dns</c> endpoint source: A/AAAA or SRV lookups through Lodestar's own stub resolver, refreshed as
    /// record TTLs expire. Options bind from <c>Lodestar:Dns</c> when an <see cref="IConfiguration"/> is registered, then
    /// <paramref name="configure"/> applies; they are validated at startup. Safe to call more than once.
    /// </summary>
    /// <param name="builder">The Lodestar builder.</param>
    /// <param name="configure">Configures the source, or <see langword="null"/>.</param>
    /// <returns>The builder.</returns>
    /// <remarks>
    /// The source accepts every service name that is a valid DNS name, so add it after sources that should answer first.
    /// Idle pooled connections to addresses that leave a service are closed by the core (see
    /// <see cref="Lodestar.LodestarOptions.RetireRemovedConnections"/>), as for every source.
    /// </remarks>
    public static ILodestarBuilder AddDns(this ILodestarBuilder builder, Action<DnsSourceOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<DnsSourceOptions>, DnsSourceOptionsSetup>());
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<DnsSourceOptions>, DnsSourceOptionsValidator>());
        services.AddOptions<DnsSourceOptions>().ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEndpointSourceProvider, DnsEndpointSourceProvider>());
        return builder;
    }
}
