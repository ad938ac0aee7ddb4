using Grpc.Net.Client.Balancer;
using Lodestar.DependencyInjection;
using Lodestar.Diagnostics;
using Lodestar.Discovery;
using Lodestar.Health;
using Lodestar.Http;
using Lodestar.LoadBalancing;
using Lodestar.Resilience.Admission;
using Lodestar.Xds;
using Lodestar.Xds.Channels.Internal;
using Lodestar.Xds.Client.Internal;
using Lodestar.Xds.Clusters.Internal;
using Lodestar.Xds.DependencyInjection.Internal;
using Lodestar.Xds.Discovery.Internal;
using Lodestar.Xds.Endpoints.Internal;
using Lodestar.Xds.Routing.Internal;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

using Lodestar.Xds.Diagnostics;
using Lodestar.Xds.Diagnostics.Internal;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds xDS to Lodestar.</summary>
public static class XdsLodestarBuilderExtensions
{
    /// <summary>The name of the endpoint source that follows xDS clusters.</summary>
    public const string SourceName = XdsEndpointSourceProvider.SourceName;

    /// <summary>
    /// Adds the <c>xds</c> endpoint source: a service name is an xDS cluster name, whose endpoints come from the control
    /// plane named in the gRPC xDS bootstrap over one aggregated discovery stream. Options bind from the
    /// <c>Lodestar:Xds</c> configuration section and are validated at startup together with the bootstrap. Safe to call
    /// more than once.
    /// </summary>
    /// <remarks>
    /// <para>
    /// The source accepts every service name: clients that name no source ask the registered sources in order, so add
    /// it after the sources that should be asked first, or name it.
    /// </para>
    /// <para>
    /// Each followed cluster's CDS settings (policy and its tuning, slow start, outlier detection) become the named
    /// <see cref="LoadBalancingOptions"/> and <see cref="OutlierDetectionOptions"/> of the service of that name, applied
    /// after configuration binding and live on change. Requests of clients whose source is <c>xds</c> are routed by the
    /// listener named after the request's authority (LDS, then RDS): cluster, timeout, retry policy and hash key per
    /// route, through an <see cref="IRequestRouter"/>.
    /// </para>
    /// <para>
    /// gRPC channels whose <c>ServiceProvider</c> is this container resolve <c>xds:///&lt;listener&gt;</c> addresses the
    /// same way (gRPC's scheme): the listener's routes choose a cluster per call, weighted clusters included, and Lodestar's
    /// balancer of that cluster the endpoint.
    /// </para>
    /// <para>
    /// The admin view (<c>MapLodestarAdmin</c>) gets an <c>xds</c> section: the server in use and, per resource type, the
    /// subscribed names, accepted version, last nonce and last NACK.
    /// </para>
    /// </remarks>
    /// <param name="builder">The Lodestar builder.</param>
    /// <param name="configure">Configures the options after configuration is bound, or <see langword="null"/>.</param>
    /// <returns>The builder.</returns>
    public static ILodestarBuilder AddXds(this ILodestarBuilder builder, Action<XdsOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<XdsOptions>, XdsOptionsSetup>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<XdsOptions>, XdsOptionsValidator>());
        var options = services.AddOptions<XdsOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddSingleton<XdsClientProvider>();
        services.TryAddSingleton<IXdsInspector, XdsInspector>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ILodestarStatusSection, XdsStatusSection>());
        services.TryAddSingleton<XdsClusterOptions>();
        services.TryAddSingleton<XdsDropOverloads>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<LoadBalancingOptions>, XdsClusterOptions>(static sp => sp.GetRequiredService<XdsClusterOptions>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<OutlierDetectionOptions>, XdsClusterOptions>(static sp => sp.GetRequiredService<XdsClusterOptions>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IOptionsChangeTokenSource<LoadBalancingOptions>, XdsClusterOptions.ChangeSource<LoadBalancingOptions>>(
            static sp => sp.GetRequiredService<XdsClusterOptions>().LoadBalancingChanges));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IOptionsChangeTokenSource<OutlierDetectionOptions>, XdsClusterOptions.ChangeSource<OutlierDetectionOptions>>(
            static sp => sp.GetRequiredService<XdsClusterOptions>().OutlierChanges));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<ConcurrencyLimitOptions>, XdsClusterOptions>(static sp => sp.GetRequiredService<XdsClusterOptions>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IOptionsChangeTokenSource<ConcurrencyLimitOptions>, XdsClusterOptions.ChangeSource<ConcurrencyLimitOptions>>(
            static sp => sp.GetRequiredService<XdsClusterOptions>().ConcurrencyChanges));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<ConnectionOptions>, XdsClusterOptions>(static sp => sp.GetRequiredService<XdsClusterOptions>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEndpointSourceProvider, XdsEndpointSourceProvider>());
        services.TryAddSingleton<XdsRequestRouter>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IRequestRouter, XdsRequestRouter>(static sp => sp.GetRequiredService<XdsRequestRouter>()));

        // gRPC channels created with this container as their ServiceProvider resolve xds:///<listener>.
        services.TryAddSingleton<XdsClusterCallCounters>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ResolverFactory, XdsResolverFactory>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<LoadBalancerFactory, XdsClusterBalancerFactory>());
        return builder;
    }
}
