using Envoy.Config.Route.V3;
using Google.Protobuf.WellKnownTypes;
using Lodestar.Http;
using Lodestar.LoadBalancing;
using Lodestar.Testing;
using Lodestar.Testing.Xds;
using Lodestar.Xds.Client.Internal;
using Lodestar.Xds.Endpoints.Internal;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Routing.Internal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Lodestar.Xds.Tests.Infrastructure;

/// <summary>
/// A fake control plane, real Kestrel backends and an <see cref="HttpClient"/> whose source is <c>xds</c>: the clusters
/// are named after the backends (cluster <c>a</c> is backend <c>a</c>), and the listener <see cref="Listener"/> routes
/// <see cref="BaseUrl"/>.
/// </summary>
internal sealed class XdsTrafficHarness : IAsyncDisposable
{
    public const string Listener = "orders.test:8080";
    public const string RouteConfigName = "orders-routes";
    public const string BaseUrl = "http://orders.test:8080";

    private XdsTrafficHarness(FakeXdsServer server, ServiceProvider services, IReadOnlyDictionary<string, TestBackend> backends)
    {
        Server = server;
        Services = services;
        Backends = backends;
        Http = services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        Http.Timeout = TimeSpan.FromSeconds(30);
    }

    public FakeXdsServer Server { get; }

    public ServiceProvider Services { get; }

    public IReadOnlyDictionary<string, TestBackend> Backends { get; }

    public HttpClient Http { get; }

    /// <summary>Starts the server and the backends, publishes one EDS cluster per backend and the listener (routes are the test's).</summary>
    public static async Task<XdsTrafficHarness> StartAsync(string[] backendNames, Func<double>? random = null, TimeProvider? timeProvider = null,
        Action<LodestarClientOptions>? client = null, Action<IServiceCollection>? configure = null)
    {
        var server = await FakeXdsServer.StartAsync();
        var backends = new Dictionary<string, TestBackend>(StringComparer.Ordinal);
        foreach (var name in backendNames)
        {
            var backend = await TestBackend.StartAsync(name);
            backends.Add(name, backend);
            server.SetResource(XdsTypeUrls.Cluster, name, XdsResources.EdsCluster(name));
            server.SetResource(XdsTypeUrls.ClusterLoadAssignment, name, XdsResources.Assignment(name, ("127.0.0.1", backend.Port)));
        }

        server.SetResource(XdsTypeUrls.Listener, Listener, XdsResources.ApiListener(Listener, RouteConfigName));
        var services = new ServiceCollection();
        services.AddLogging();
        if (timeProvider is not null)
        {
            services.AddSingleton(timeProvider);
        }

        if (random is not null)
        {
            services.AddSingleton(sp => new XdsRequestRouter(sp.GetRequiredService<XdsClientProvider>(), sp.GetRequiredService<IOptionsMonitor<LodestarClientOptions>>(),
                sp.GetRequiredService<IOptionsMonitor<LodestarOptions>>(), sp.GetRequiredService<TimeProvider>(), NullLogger.Instance, random,
                sp.GetRequiredService<XdsDropOverloads>(), sp.GetRequiredService<IServiceBalancing>()));
        }

        services.AddLodestar(o => o.ResolutionTimeout = TimeSpan.FromSeconds(10)).AddXds(o => o.BootstrapJson = server.Bootstrap());
        services.AddHttpClient("orders").AddLodestar(o =>
        {
            o.Source = "xds";
            client?.Invoke(o);
        });
        configure?.Invoke(services);
        return new XdsTrafficHarness(server, services.BuildServiceProvider(), backends);
    }

    /// <summary>Sets the route configuration to one virtual host for every domain with these routes.</summary>
    public void SetRoutes(params Route[] routes)
        => Server.SetResource(XdsTypeUrls.RouteConfiguration, RouteConfigName, XdsResources.Routes(RouteConfigName, XdsResources.Host("orders", ["*"], routes)));

    /// <summary>Sends a GET and returns the instance that answered (or throws).</summary>
    public async Task<string> GetInstanceAsync(string path, CancellationToken cancellationToken = default)
    {
        using var response = await Http.GetAsync(BaseUrl + path, cancellationToken);
        return response.Headers.GetValues("X-Instance").Single();
    }

    public static Route WeightedRoute(string prefix, params (string Cluster, uint Weight)[] clusters)
    {
        var weighted = new WeightedCluster();
        foreach (var (cluster, weight) in clusters)
        {
            weighted.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = cluster, Weight = weight });
        }

        return new Route { Match = new RouteMatch { Prefix = prefix }, Route_ = new RouteAction { WeightedClusters = weighted } };
    }

    public static Route WithTimeout(Route route, TimeSpan timeout)
    {
        route.Route_.Timeout = Duration.FromTimeSpan(timeout);
        return route;
    }

    public static Route WithRetry(Route route, string retryOn, uint retries)
    {
        route.Route_.RetryPolicy = new RetryPolicy
        {
            RetryOn = retryOn,
            NumRetries = retries,
            RetryBackOff = new RetryPolicy.Types.RetryBackOff { BaseInterval = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(1)) },
        };
        return route;
    }

    public async ValueTask DisposeAsync()
    {
        await Services.DisposeAsync();
        foreach (var backend in Backends.Values)
        {
            await backend.DisposeAsync();
        }

        await Server.DisposeAsync();
    }
}
