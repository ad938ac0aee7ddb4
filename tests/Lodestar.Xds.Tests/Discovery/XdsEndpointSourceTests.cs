using System.Threading.Channels;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Testing.Xds;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;

namespace Lodestar.Xds.Tests.Discovery;

public sealed class XdsEndpointSourceTests
{
    private const string Cluster = "outbound|8080||orders.default.svc.cluster.local";

    [Fact]
    public async Task Resolver_XdsCluster_SeesItsEndpointsAndFollowsAnUpdate()
    {
        await using var server = await FakeXdsServer.StartAsync();
        server.SetResource(XdsTypeUrls.Cluster, Cluster, EdsCluster(Cluster, serviceName: "orders-eds"));
        server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "orders-eds", Assignment("orders-eds",
            Locality("zone-a", 1, 0, Endpoint("10.1.0.1", 8080), Endpoint("10.1.0.2", 8080)),
            Locality("zone-b", 1, 1, Endpoint("10.2.0.1", 8080))));
        await using var provider = BuildProvider(server);
        var resolver = provider.GetRequiredService<IEndpointResolver>();

        var set = await resolver.GetEndpointsAsync(Cluster, "xds");

        Assert.Equal("xds", set.SourceName);
        Assert.Equal(["10.1.0.1", "10.1.0.2", "10.2.0.1"], set.Endpoints.Select(e => e.Host));
        Assert.Equal([0, 0, 1], set.Endpoints.Select(e => e.Priority));
        Assert.Equal("zone-b", set.Endpoints[2].Zone);

        var updates = Channel.CreateUnbounded<EndpointSet>();
        using var watch = resolver.Watch(Cluster, "xds", s => updates.Writer.TryWrite(s));
        server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "orders-eds", Assignment("orders-eds",
            Locality("zone-a", 1, 0, Endpoint("10.1.0.2", 8080), Endpoint("10.1.0.3", 8080, health: Envoy.Config.Core.V3.HealthStatus.Draining), Endpoint("10.1.0.4", 8080))));

        var updated = await NextAsync(updates, s => s.Endpoints.Any(e => e.Host == "10.1.0.4"));
        Assert.Equal(["10.1.0.2", "10.1.0.4"], updated.Endpoints.Select(e => e.Host));
    }

    [Fact]
    public async Task Resolver_ClusterChangesItsEdsServiceName_FollowsTheNewEndpoints()
    {
        await using var server = await FakeXdsServer.StartAsync();
        server.SetResource(XdsTypeUrls.Cluster, Cluster, EdsCluster(Cluster, serviceName: "blue"));
        server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "blue", Assignment("blue", ("10.0.0.1", 80)));
        server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "green", Assignment("green", ("10.0.0.2", 80)));
        await using var provider = BuildProvider(server);
        var resolver = provider.GetRequiredService<IEndpointResolver>();
        Assert.Equal("10.0.0.1", Assert.Single((await resolver.GetEndpointsAsync(Cluster, "xds")).Endpoints).Host);
        var updates = Channel.CreateUnbounded<EndpointSet>();
        using var watch = resolver.Watch(Cluster, "xds", s => updates.Writer.TryWrite(s));

        server.SetResource(XdsTypeUrls.Cluster, Cluster, EdsCluster(Cluster, serviceName: "green"));

        var updated = await NextAsync(updates, s => s.Endpoints.Any(e => e.Host == "10.0.0.2"));
        Assert.Equal("10.0.0.2", Assert.Single(updated.Endpoints).Host);
    }

    [Fact]
    public async Task Resolver_ClusterRemoved_PublishesAnEmptySetAndSaysWhy()
    {
        await using var server = await FakeXdsServer.StartAsync();
        server.SetResource(XdsTypeUrls.Cluster, Cluster, EdsCluster(Cluster));
        server.SetResource(XdsTypeUrls.ClusterLoadAssignment, Cluster, Assignment(Cluster, ("10.0.0.1", 80)));
        await using var provider = BuildProvider(server);
        var resolver = provider.GetRequiredService<IEndpointResolver>();
        Assert.Single((await resolver.GetEndpointsAsync(Cluster, "xds")).Endpoints);
        var updates = Channel.CreateUnbounded<EndpointSet>();
        var errors = Channel.CreateUnbounded<Exception>();
        using var watch = resolver.Watch(Cluster, "xds", s => updates.Writer.TryWrite(s), e => errors.Writer.TryWrite(e));

        server.RemoveResource(XdsTypeUrls.Cluster, Cluster);

        await NextAsync(updates, s => s.Count == 0);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var error = await errors.Reader.ReadAsync(cts.Token);
        Assert.Contains($"Cluster '{Cluster}' does not exist on xDS server", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Source_OverUnixSocket_AsIstioAgentServesIt()
    {
        var socket = Path.Combine(Path.GetTempPath(), $"xds-{Guid.NewGuid():N}.sock");
        await using var server = await FakeXdsServer.StartAsync(unixSocketPath: socket);
        server.SetResource(XdsTypeUrls.Cluster, "c", new Envoy.Config.Cluster.V3.Cluster
        {
            Name = "c",
            Type = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType.Static,
            LoadAssignment = Assignment("c", ("10.9.9.9", 443)),
        });
        await using var provider = BuildProvider(server);

        var set = await provider.GetRequiredService<IEndpointResolver>().GetEndpointsAsync("c", "xds");

        Assert.StartsWith("unix://", server.Target, StringComparison.Ordinal);
        Assert.Equal("10.9.9.9:443", Assert.Single(set.Endpoints).Address);
    }

    [Fact]
    public async Task Resolver_ServerGoesAwayAndComesBack_FollowsTheUpdateMadeMeanwhile()
    {
        await using var server = await FakeXdsServer.StartAsync();
        server.SetResource(XdsTypeUrls.Cluster, Cluster, EdsCluster(Cluster));
        server.SetResource(XdsTypeUrls.ClusterLoadAssignment, Cluster, Assignment(Cluster, ("10.0.0.1", 80)));

        // Real sockets here, with a short backoff so the reconnect is prompt.
        await using var provider = BuildProvider(server, o =>
        {
            o.Backoff.InitialDelay = TimeSpan.FromMilliseconds(20);
            o.Backoff.MaxDelay = TimeSpan.FromMilliseconds(100);
        });
        var resolver = provider.GetRequiredService<IEndpointResolver>();
        Assert.Equal("10.0.0.1", Assert.Single((await resolver.GetEndpointsAsync(Cluster, "xds")).Endpoints).Host);
        var updates = Channel.CreateUnbounded<EndpointSet>();
        using var watch = resolver.Watch(Cluster, "xds", s => updates.Writer.TryWrite(s));

        // The server goes away (every stream reset, the port closed), changes while away, and comes back.
        await server.StopAsync();
        server.SetResource(XdsTypeUrls.ClusterLoadAssignment, Cluster, Assignment(Cluster, ("10.0.0.2", 80)));
        await server.StartAgainAsync();

        var updated = await NextAsync(updates, s => s.Endpoints.Any(e => e.Host == "10.0.0.2"));
        Assert.Equal("10.0.0.2", Assert.Single(updated.Endpoints).Host);
        Assert.True(server.StreamsOpened >= 2);
    }

    private static ServiceProvider BuildProvider(FakeXdsServer server, Action<XdsOptions>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddLodestarCore().AddXds(o =>
        {
            o.BootstrapJson = server.Bootstrap();
            configure?.Invoke(o);
        });
        return services.BuildServiceProvider();
    }

    private static async Task<EndpointSet> NextAsync(Channel<EndpointSet> updates, Func<EndpointSet, bool> predicate)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            var set = await updates.Reader.ReadAsync(cts.Token);
            if (predicate(set))
            {
                return set;
            }
        }
    }
}
