using Envoy.Config.Route.V3;
using Grpc.Core;
using Grpc.Net.Client;
using Lodestar.Testing.Xds;
using Lodestar.Xds.Channels;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Tests.Protos;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Xds.Tests.Infrastructure;

/// <summary>
/// A fake control plane, real Grpc.AspNetCore backends and a gRPC channel for <c>xds:///</c><see cref="Listener"/>:
/// cluster <c>a</c> holds backend <c>a</c> unless the test publishes other endpoints; the routes are the test's.
/// </summary>
internal sealed class XdsChannelHarness : IAsyncDisposable
{
    public const string Listener = "greeter.test:50051";
    public const string RouteConfigName = "greeter-routes";

    private XdsChannelHarness(FakeXdsServer server, ServiceProvider services, IReadOnlyDictionary<string, GreeterBackend> backends, bool useXds, string? clientName)
    {
        Server = server;
        Services = services;
        Backends = backends;
        var options = new GrpcChannelOptions { Credentials = ChannelCredentials.Insecure, ServiceProvider = services };
        Channel = GrpcChannel.ForAddress("xds:///" + Listener, useXds ? options.UseXds(services, clientName) : options);
        Client = new Greeter.GreeterClient(Channel);
    }

    public FakeXdsServer Server { get; }

    public ServiceProvider Services { get; }

    public IReadOnlyDictionary<string, GreeterBackend> Backends { get; }

    public GrpcChannel Channel { get; }

    public Greeter.GreeterClient Client { get; }

    /// <summary>Starts the server and the backends, and publishes one EDS cluster per backend and the listener.</summary>
    /// <param name="backendNames">The backends, each with a cluster of the same name.</param>
    /// <param name="timeProvider">The clock of the container, or <see langword="null"/> for the system's.</param>
    /// <param name="useXds">Whether the channel is set up with <c>UseXds</c> (else only its <c>ServiceProvider</c> is set).</param>
    /// <param name="clientName">The Lodestar client <c>UseXds</c> reads the gRPC failure statuses of.</param>
    /// <param name="configure">Adds to the container before it is built.</param>
    public static async Task<XdsChannelHarness> StartAsync(string[] backendNames, TimeProvider? timeProvider = null, bool useXds = true, string? clientName = null,
        Action<IServiceCollection>? configure = null)
    {
        var server = await FakeXdsServer.StartAsync();
        var backends = new Dictionary<string, GreeterBackend>(StringComparer.Ordinal);
        foreach (var name in backendNames)
        {
            var backend = await GreeterBackend.StartAsync(name);
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

        services.AddLodestar(o => o.ResolutionTimeout = TimeSpan.FromSeconds(10)).AddXds(o => o.BootstrapJson = server.Bootstrap());
        configure?.Invoke(services);
        return new XdsChannelHarness(server, services.BuildServiceProvider(), backends, useXds, clientName);
    }

    /// <summary>Sets the route configuration to one virtual host for every domain with these routes.</summary>
    public void SetRoutes(params Route[] routes)
        => Server.SetResource(XdsTypeUrls.RouteConfiguration, RouteConfigName, XdsResources.Routes(RouteConfigName, XdsResources.Host("greeter", ["*"], routes)));

    /// <summary>Makes one unary call and returns the backend that answered.</summary>
    public async Task<string> CallAsync()
        => (await Client.HelloAsync(new HelloRequest(), deadline: DateTime.UtcNow.AddSeconds(10))).Instance;

    /// <summary>Makes <paramref name="calls"/> calls one after another and counts the answers per backend.</summary>
    public async Task<Dictionary<string, int>> CountAsync(int calls)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < calls; i++)
        {
            var instance = await CallAsync();
            counts[instance] = counts.GetValueOrDefault(instance) + 1;
        }

        return counts;
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await Services.DisposeAsync();
        foreach (var backend in Backends.Values)
        {
            await backend.DisposeAsync();
        }

        await Server.DisposeAsync();
    }
}
