using Lodestar;
using Lodestar.DependencyInjection;
using Lodestar.DependencyInjection.Internal;
using Lodestar.Diagnostics;
using Lodestar.Diagnostics.Internal;
using Lodestar.Discovery;
using Lodestar.Discovery.Configuration;
using Lodestar.Discovery.Configuration.Internal;
using Lodestar.Discovery.Internal;
using Lodestar.Health;
using Lodestar.Health.Internal;
using Lodestar.Http;
using Lodestar.Http.Internal;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Lodestar.Resilience.Internal;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Lodestar in a service collection.</summary>
public static class LodestarServiceCollectionExtensions
{
    /// <summary>
    /// Adds Lodestar's endpoint cache, the built-in load-balancing policies and the configuration source (the embedded
    /// default), with options bound from the <c>Lodestar</c> configuration section. Safe to call more than once.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <returns>A builder to add more sources and policies.</returns>
    public static ILodestarBuilder AddLodestar(this IServiceCollection services)
    {
        var builder = services.AddLodestarCore();
        builder.AddConfigurationSource();
        return builder;
    }

    /// <summary>Adds Lodestar as <see cref="AddLodestar(IServiceCollection)"/> does and configures its options.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Configures the process-wide options.</param>
    /// <returns>A builder to add more sources and policies.</returns>
    public static ILodestarBuilder AddLodestar(this IServiceCollection services, Action<LodestarOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var builder = services.AddLodestar();
        services.Configure(configure);
        return builder;
    }

    /// <summary>
    /// Adds Lodestar's core services (endpoint cache, policies, handler machinery) and no source. Safe to call more than once.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <returns>A builder to add sources and policies.</returns>
    public static ILodestarBuilder AddLodestarCore(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions();
        services.AddMetrics();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(RandomSource.Shared);
        services.TryAddSingleton<ConnectionRetirer>();
        services.TryAddSingleton<EndpointCache>();
        services.TryAddSingleton<IEndpointResolver>(static sp => sp.GetRequiredService<EndpointCache>());
        services.TryAddSingleton(static sp => new HealthRegistry(
            sp.GetRequiredService<IEndpointResolver>(),
            sp.GetRequiredService<IOptionsMonitor<OutlierDetectionOptions>>(),
            sp.GetRequiredService<IOptionsMonitor<HealthCheckOptions>>(),
            sp.GetRequiredService<IOptionsMonitor<CircuitBreakerOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<RandomSource>(),
            sp.GetRequiredService<LodestarMetrics>(),
            sp.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>(),
            sp.GetRequiredService<IOptionsMonitor<LoadBalancingOptions>>(),
            sp.GetRequiredService<ConnectionRetirer>(),
            sp.GetRequiredService<HealthProbeFactories>()));
        services.TryAddSingleton(static sp => new HealthProbeFactories(sp.GetServices<HealthProbeFactory>()));
        services.TryAddSingleton(static sp => new BalancerRegistry(
            sp.GetRequiredService<HealthRegistry>(),
            sp.GetServices<ILoadBalancingPolicy>(),
            sp.GetRequiredService<IOptionsMonitor<LodestarOptions>>(),
            sp.GetRequiredService<RandomSource>(),
            sp.GetRequiredService<IOptionsMonitor<LoadBalancingOptions>>()));
        services.TryAddSingleton<ResilienceRegistry>();
        services.TryAddSingleton<IServiceBalancing>(static sp => new ServiceBalancing(
            sp.GetRequiredService<BalancerRegistry>(), sp.GetRequiredService<HealthRegistry>(), sp.GetRequiredService<LodestarMetrics>()));
        services.TryAddSingleton(static sp => new LodestarEventLog(sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<LodestarMetrics>();
        services.TryAddSingleton<ILodestarInspector>(static sp => new LodestarInspector(
            sp.GetRequiredService<BalancerRegistry>(),
            sp.GetRequiredService<LodestarMetrics>(),
            sp.GetRequiredService<TimeProvider>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<LodestarOptions>, LodestarOptionsSetup>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LodestarOptions>, LodestarOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LodestarClientOptions>, LodestarOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<LodestarClientOptions>, LodestarClientOptionsSetup>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LodestarClientOptions>, ResilienceOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<OutlierDetectionOptions>, HealthOptionsSetup>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<HealthCheckOptions>, HealthOptionsSetup>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<CircuitBreakerOptions>, HealthOptionsSetup>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<OutlierDetectionOptions>, ResilienceOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<HealthCheckOptions>, ResilienceOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CircuitBreakerOptions>, ResilienceOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<HealthCheckOptions>, HealthProbeOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LodestarClientOptions>, HealthProbeOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LodestarOptions>, HealthStartupValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<ConnectionOptions>, ConnectionOptionsSetup>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ConnectionOptions>, ConnectionOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LodestarOptions>, ConnectionStartupValidator>());
        services.AddOptions<LodestarOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, RoundRobinPolicy>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, RandomPolicy>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, LeastRequestPolicy>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, WeightedRoundRobinPolicy>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, PeakEwmaPolicy>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, RingHashPolicy>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, MaglevPolicy>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<LoadBalancingOptions>, LoadBalancingOptionsSetup>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LoadBalancingOptions>, LoadBalancingOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LodestarOptions>, LoadBalancingStartupValidator>());
        return new LodestarBuilder(services);
    }

    /// <summary>Adds the configuration source, which serves services declared in <see cref="IConfiguration"/>.</summary>
    /// <param name="builder">The Lodestar builder.</param>
    /// <param name="configure">Configures the source's options, or <see langword="null"/>.</param>
    /// <returns>The builder.</returns>
    public static ILodestarBuilder AddConfigurationSource(this ILodestarBuilder builder, Action<ConfigurationSourceOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (configure is not null)
        {
            builder.Services.Configure(configure);
        }

        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IEndpointSourceProvider, ConfigurationEndpointSourceProvider>(static sp =>
            new ConfigurationEndpointSourceProvider(
                sp.GetService<IConfiguration>() ?? new ConfigurationBuilder().Build(),
                sp.GetRequiredService<IOptionsMonitor<ConfigurationSourceOptions>>(),
                sp.GetService<TimeProvider>(),
                sp.GetService<Microsoft.Extensions.Logging.ILoggerFactory>())));
        return builder;
    }

    /// <summary>Adds a custom load-balancing policy; a policy with the name of a built-in one replaces it.</summary>
    /// <typeparam name="TPolicy">The policy type.</typeparam>
    /// <param name="builder">The Lodestar builder.</param>
    /// <returns>The builder.</returns>
    public static ILodestarBuilder AddLoadBalancingPolicy<TPolicy>(this ILodestarBuilder builder)
        where TPolicy : class, ILoadBalancingPolicy
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<ILoadBalancingPolicy, TPolicy>());
        return builder;
    }

    /// <summary>Adds a custom endpoint source provider.</summary>
    /// <typeparam name="TProvider">The provider type.</typeparam>
    /// <param name="builder">The Lodestar builder.</param>
    /// <returns>The builder.</returns>
    public static ILodestarBuilder AddEndpointSource<TProvider>(this ILodestarBuilder builder)
        where TProvider : class, IEndpointSourceProvider
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IEndpointSourceProvider, TProvider>());
        return builder;
    }
}
