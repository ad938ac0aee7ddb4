using Lodestar.DependencyInjection;
using Lodestar.Discovery;
using Lodestar.Etcd;
using Lodestar.Etcd.Client.Internal;
using Lodestar.Etcd.DependencyInjection.Internal;
using Lodestar.Etcd.Discovery.Internal;
using Lodestar.Etcd.Registration.Internal;
using Lodestar.Registration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds etcd to Lodestar.</summary>
public static class EtcdLodestarBuilderExtensions
{
    /// <summary>
    /// Adds the <c>etcd</c> endpoint source (range + watch of <c>{Prefix}{service}/</c>) and the <c>etcd</c>
    /// <see cref="IServiceRegistrar"/> (lease-bound keys), with <see cref="EtcdOptions"/> bound from the
    /// <c>Lodestar:Etcd</c> configuration section and validated at startup. Safe to call more than once.
    /// </summary>
    /// <param name="builder">The Lodestar builder.</param>
    /// <param name="configure">Configures the options after configuration is bound, or <see langword="null"/>.</param>
    /// <returns>The builder.</returns>
    public static ILodestarBuilder AddEtcd(this ILodestarBuilder builder, Action<EtcdOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<EtcdOptions>, EtcdOptionsSetup>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<EtcdOptions>, EtcdOptionsValidator>());
        var options = services.AddOptions<EtcdOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddSingleton(static sp => new EtcdClient(
            sp.GetRequiredService<IOptions<EtcdOptions>>().Value,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<EtcdClient>>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEndpointSourceProvider, EtcdEndpointSourceProvider>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IServiceRegistrar, EtcdServiceRegistrar>());
        return builder;
    }
}
