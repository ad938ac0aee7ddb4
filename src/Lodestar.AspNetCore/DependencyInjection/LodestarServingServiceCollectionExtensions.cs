using Lodestar.AspNetCore;
using Lodestar.AspNetCore.DependencyInjection.Internal;
using Lodestar.AspNetCore.Health.Internal;
using Lodestar.AspNetCore.Hosting.Internal;
using Lodestar.AspNetCore.Metrics;
using Lodestar.AspNetCore.Registration;
using Lodestar.AspNetCore.Registration.Internal;
using Lodestar.Internal;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Lodestar's serving side: health endpoints, graceful drain, self-registration and the Prometheus exporter.</summary>
public static class LodestarServingServiceCollectionExtensions
{
    /// <summary>
    /// Adds what <c>MapLodestarHealth</c> and <c>MapLodestarMetrics</c> serve, and the graceful drain: on shutdown
    /// readiness turns 503 at once, registrations are removed, and the server keeps serving for
    /// <see cref="LodestarServingOptions.DrainDelay"/> before it stops accepting. Options bind from the
    /// <c>Lodestar:Serving</c> configuration section. Safe to call more than once.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Configures the options after configuration binding, or <see langword="null"/>.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddLodestarServing(this IServiceCollection services, Action<LodestarServingOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions();
        services.AddHealthChecks();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ServingState>();
        services.TryAddSingleton<ReadinessProbe>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<LodestarServingOptions>, LodestarServingOptionsSetup>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LodestarServingOptions>, LodestarServingOptionsValidator>());
        services.AddOptions<LodestarServingOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, ServingLifecycleService>());
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.AddLodestarPrometheusExporter();
        return services;
    }

    /// <summary>
    /// Registers this instance, once the server listens, in every registry whose
    /// <see cref="Lodestar.Registration.IServiceRegistrar"/> is in the container (Consul, etcd, ...), advertising the
    /// bound address (or <c>POD_IP</c>, or <see cref="LodestarRegistrationOptions.AdvertiseAddress"/>; never a
    /// wildcard), and removes the registrations first on shutdown. Adds <see cref="AddLodestarServing"/> too.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Configures what to register; <see cref="LodestarRegistrationOptions.ServiceName"/> is required.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddLodestarRegistration(this IServiceCollection services, Action<LodestarRegistrationOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddLodestarServing();
        services.Configure(configure);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LodestarRegistrationOptions>, LodestarRegistrationOptionsValidator>());
        services.AddOptions<LodestarRegistrationOptions>().ValidateOnStart();
        services.TryAddSingleton<RegistrationHost>();
        return services;
    }

    /// <summary>
    /// Adds the <see cref="PrometheusExporter"/> that <c>MapLodestarMetrics</c> serves, limited to this container's
    /// meters (and process-wide ones such as <c>System.Net.Http</c>'s default). Safe to call more than once.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Adds meters or changes limits, or <see langword="null"/>.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddLodestarPrometheusExporter(this IServiceCollection services, Action<PrometheusExporterOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddMetrics();
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddSingleton(static sp => new PrometheusExporter(
            sp.GetRequiredService<IOptions<PrometheusExporterOptions>>().Value,
            sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()));
        return services;
    }
}
