using Lodestar.Consul;
using Lodestar.Consul.Discovery.Internal;
using Lodestar.Consul.Internal;
using Lodestar.Consul.Registration.Internal;
using Lodestar.DependencyInjection;
using Lodestar.Discovery;
using Lodestar.Registration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds Consul to Lodestar.</summary>
public static class ConsulLodestarBuilderExtensions
{
    /// <summary>
    /// Adds the <c>consul</c> endpoint source (blocking health queries) and the Consul <see cref="IServiceRegistrar"/>,
    /// with <see cref="ConsulOptions"/> bound from the <c>Lodestar:Consul</c> configuration section, then
    /// <paramref name="configure"/>, then Consul's environment variables for what is still unset; the options are
    /// validated at startup. Safe to call more than once.
    /// </summary>
    /// <param name="builder">The Lodestar builder.</param>
    /// <param name="configure">Configures the options, or <see langword="null"/>.</param>
    /// <returns>The builder.</returns>
    /// <remarks>
    /// The Consul source accepts every service name, so when no source is named it serves whatever the sources added
    /// before it do not. Name it per client (<c>Source = "consul"</c>) or set <c>Lodestar:DefaultSource</c>.
    /// </remarks>
    public static ILodestarBuilder AddConsul(this ILodestarBuilder builder, Action<ConsulOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<ConsulOptions>, ConsulOptionsSetup>());
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<ConsulOptions>, ConsulEnvironmentPostConfigure>(
            static _ => new ConsulEnvironmentPostConfigure(Environment.GetEnvironmentVariable)));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ConsulOptions>, ConsulOptionsValidator>());

        if (!services.Any(static d => d.ServiceType == typeof(ConsulApi)))
        {
            services.AddOptions<ConsulOptions>().ValidateOnStart();
            services.AddHttpClient(ConsulApi.HttpClientName, static client => client.Timeout = Timeout.InfiniteTimeSpan)
                .ConfigurePrimaryHttpMessageHandler(static sp => ConsulHttpHandlerFactory.Create(sp.GetRequiredService<IOptionsMonitor<ConsulOptions>>().CurrentValue))

                // The default loggers write a failed request's exception whole, and its message can quote what the agent
                // sent, the ACL token included: log through the redactor instead.
                .RemoveAllLoggers()
                .AddLogger(static sp => new ConsulHttpLogger(
                    (sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance).CreateLogger("Lodestar.Consul.Http"), sp.GetRequiredService<ConsulApi>()));
            services.TryAddSingleton<ConsulApi>();
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEndpointSourceProvider, ConsulEndpointSourceProvider>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IServiceRegistrar, ConsulServiceRegistrar>());
        return builder;
    }
}
