using Grpc.Net.Client.Balancer;
using Grpc.Net.Client.Configuration;
using Lodestar.Discovery;
using Lodestar.Grpc;
using Lodestar.Grpc.Health.Internal;
using Lodestar.Grpc.Internal;
using Lodestar.Health;
using Lodestar.Http;
using Lodestar.LoadBalancing;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Lodestar's gRPC resolver and balancers, and wires them into gRPC client factory clients.</summary>
public static class LodestarGrpcServiceCollectionExtensions
{
    /// <summary>
    /// Adds Lodestar (as <c>AddLodestar()</c> does), the <c>lodestar</c> <see cref="ResolverFactory"/> and one
    /// <see cref="LoadBalancerFactory"/> per name in <see cref="LodestarGrpcPolicies"/>, for channels whose
    /// <see cref="Grpc.Net.Client.GrpcChannelOptions.ServiceProvider"/> is this container, and the
    /// <see cref="HealthCheckProtocols.Grpc"/> active health check probe (<c>grpc.health.v1.Health/Check</c>), selected
    /// with <c>HealthChecks:Protocol = Grpc</c>. Safe to call more than once.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <returns>The service collection.</returns>
    public static IServiceCollection AddLodestarGrpc(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddLodestar();
        if (services.Any(static d => d.ServiceType == typeof(Marker)))
        {
            return services;
        }

        services.AddSingleton<Marker>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<HealthProbeFactory, GrpcHealthProbeFactory>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ResolverFactory, LodestarResolverFactory>(static sp =>
            new LodestarResolverFactory(sp.GetRequiredService<IEndpointResolver>())));
        foreach (var name in (string[])[LodestarGrpcPolicies.LeastRequest, LodestarGrpcPolicies.PeakEwma, LodestarGrpcPolicies.RoundRobin, LodestarGrpcPolicies.RingHash,
                     LodestarGrpcPolicies.Maglev])
        {
            services.AddSingleton<LoadBalancerFactory>(sp => new LodestarBalancerFactory(name, sp.GetRequiredService<IServiceBalancing>(),
                sp.GetRequiredService<IOptionsMonitor<LodestarClientOptions>>()));
        }

        return services;
    }

    /// <summary>
    /// Balances a gRPC client factory client (<c>AddGrpcClient&lt;T&gt;(o =&gt; o.Address = new Uri("lodestar:///orders"))</c>)
    /// over the service's endpoints with a Lodestar balancer: registers <see cref="AddLodestarGrpc"/>, points the channel
    /// at this container, selects the balancer, makes the primary handler a <see cref="SocketsHttpHandler"/> (a
    /// subchannel per endpoint needs it) and adds the handler that reports each call's <c>grpc-status</c>.
    /// The client's <see cref="LodestarClientOptions"/> (source, outlier detection, breakers, checks, gRPC failure
    /// statuses) bind from <c>Lodestar:Clients:&lt;client name&gt;</c>, then <paramref name="configure"/> applies.
    /// Set the channel's credentials yourself (<c>ConfigureChannel(o =&gt; o.Credentials = ChannelCredentials.Insecure)</c> for h2c).
    /// </summary>
    /// <param name="builder">The builder <c>AddGrpcClient</c> returned.</param>
    /// <param name="balancerName">A name from <see cref="LodestarGrpcPolicies"/>; default <see cref="LodestarGrpcPolicies.RoundRobin"/>.</param>
    /// <param name="configure">Configures the client's Lodestar options, or <see langword="null"/>.</param>
    /// <param name="hashHeader">For <see cref="LodestarGrpcPolicies.RingHash"/> and <see cref="LodestarGrpcPolicies.Maglev"/>: the metadata header that is the hash key, or <see langword="null"/>.</param>
    /// <returns>The builder.</returns>
    /// <remarks>
    /// This is the balancer integration: grpc-dotnet keeps a connection per endpoint and Lodestar picks among them per
    /// call. The alternative is the handler integration, core's <c>AddLodestar()</c> on a client whose address is a
    /// logical <c>http://orders</c> URI: Lodestar's <see cref="HttpClient"/> handler then picks per call, with its
    /// retries, hedging and limits. docs/grpc.md compares the two.
    /// </remarks>
    public static IHttpClientBuilder AddLodestarBalancer(this IHttpClientBuilder builder, string balancerName = LodestarGrpcPolicies.RoundRobin,
        Action<LodestarClientOptions>? configure = null, string? hashHeader = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var config = LodestarGrpcPolicies.CreateConfig(balancerName, builder.Name, hashHeader);
        builder.Services.AddLodestarGrpc();
        var options = builder.Services.AddOptions<LodestarClientOptions>(builder.Name);
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        builder.ConfigurePrimaryHttpMessageHandler(LodestarGrpcChannelOptionsExtensions.CreateDefaultHandler);
        builder.AddHttpMessageHandler(static () => new GrpcOutcomeHandler());
        builder.ConfigureChannel((sp, channel) =>
        {
            channel.ServiceProvider = sp;
            channel.ServiceConfig ??= new ServiceConfig();
            channel.ServiceConfig.LoadBalancingConfigs.Clear();
            channel.ServiceConfig.LoadBalancingConfigs.Add(config);
        });
        return builder;
    }

    /// <summary>Marks the container as set up, so that a second call adds nothing twice.</summary>
    private sealed class Marker;
}
