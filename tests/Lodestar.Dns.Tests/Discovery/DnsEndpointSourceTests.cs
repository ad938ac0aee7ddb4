using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Testing;
using Lodestar.Testing.Dns;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Dns.Tests.Discovery;

public sealed class DnsEndpointSourceTests : IClassFixture<ZoneFixture>
{
    private readonly ZoneFixture _zone;

    public DnsEndpointSourceTests(ZoneFixture zone) => _zone = zone;

    [Fact]
    public async Task GetEndpointsAsync_HostNameWithPort_ReturnsAddressesWithThatPort()
    {
        await using var services = DnsServices.Build(_zone.Dns.Server);
        var resolver = services.GetRequiredService<IEndpointResolver>();

        var set = await resolver.GetEndpointsAsync("a.lodestar.test:8443", "dns");

        Assert.Equal("dns", set.SourceName);
        Assert.Equal(["127.0.0.5:8443", "[fd00::5]:8443"], set.Endpoints.Select(e => e.Address).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task GetEndpointsAsync_HostNameWithConfiguredPort_UsesPortsOption()
    {
        await using var services = DnsServices.Build(_zone.Dns.Server, o => o.Ports["web.lodestar.test"] = 9000);

        var set = await services.GetRequiredService<IEndpointResolver>().GetEndpointsAsync("web.lodestar.test");

        Assert.Equal("127.0.0.2:9000", Assert.Single(set.Endpoints).Address);
    }

    [Fact]
    public async Task GetEndpointsAsync_SrvName_MapsPriorityWeightAndPort()
    {
        await using var services = DnsServices.Build(_zone.Dns.Server);

        var set = await services.GetRequiredService<IEndpointResolver>().GetEndpointsAsync("_http._tcp.svc.lodestar.test");

        var endpoints = set.Endpoints.OrderBy(e => e.Address, StringComparer.Ordinal).ToList();
        Assert.Equal(["127.0.0.5:8080", "127.0.0.6:8081", "[fd00::5]:8080"], endpoints.Select(e => e.Address));
        Assert.Equal([1, 2, 1], endpoints.Select(e => e.Priority));
        Assert.Equal([10, 20, 10], endpoints.Select(e => e.Weight));
        Assert.Equal("a.lodestar.test", endpoints[0].Metadata["dns.target"]);
    }

    [Fact]
    public async Task GetEndpointsAsync_KubernetesHeadlessServiceWithPortName_UsesSrvRecord()
    {
        await using var services = DnsServices.Build(_zone.Dns.Server, o => o.SrvPortName = "http");

        var set = await services.GetRequiredService<IEndpointResolver>().GetEndpointsAsync("orders.shop.svc.lodestar.test");

        var endpoint = Assert.Single(set.Endpoints);
        Assert.Equal("127.0.0.6:9090", endpoint.Address);
        Assert.Equal(0, endpoint.Priority);
        Assert.Equal(5, endpoint.Weight);
    }

    [Fact]
    public async Task GetEndpointsAsync_ShortNameThroughSearchList_FindsHeadlessServiceAddresses()
    {
        await using var services = DnsServices.Build(_zone.Dns.Server, o =>
        {
            o.SearchDomains = ["shop.svc.lodestar.test", "svc.lodestar.test", "lodestar.test"];
            o.Ndots = 5;
            o.DefaultPort = 8080;
        });

        var set = await services.GetRequiredService<IEndpointResolver>().GetEndpointsAsync("orders");

        Assert.Equal("127.0.0.7:8080", Assert.Single(set.Endpoints).Address);
    }

    [Fact]
    public async Task GetEndpointsAsync_UnknownName_ReturnsEmptySet()
    {
        await using var services = DnsServices.Build(_zone.Dns.Server);

        var set = await services.GetRequiredService<IEndpointResolver>().GetEndpointsAsync("nope.lodestar.test");

        Assert.Empty(set.Endpoints);
    }

    [Fact]
    public async Task Watch_ServerGoesAway_ReportsErrorsAndKeepsLastSet()
    {
        var dns = await DnsmasqServer.StartAsync(hostsLines: ["127.0.0.2 gone.lodestar.test"], ttlSeconds: 1);
        await using var services = DnsServices.Build(dns.Server, o => o.Timeout = TimeSpan.FromMilliseconds(200));
        var resolver = services.GetRequiredService<IEndpointResolver>();
        var sets = new List<EndpointSet>();
        var errors = new List<Exception>();
        using var watch = resolver.Watch("gone.lodestar.test", "dns", s => { lock (sets) { sets.Add(s); } }, e => { lock (errors) { errors.Add(e); } });
        await resolver.GetEndpointsAsync("gone.lodestar.test", "dns");

        await dns.DisposeAsync();
        await Eventually.TrueAsync(() => { lock (errors) { return errors.Count >= 2; } }, TimeSpan.FromSeconds(15), "refresh failures are reported");

        var current = await resolver.GetEndpointsAsync("gone.lodestar.test", "dns");
        Assert.Equal("127.0.0.2:80", Assert.Single(current.Endpoints).Address);
        lock (sets)
        {
            Assert.Single(sets);
        }

        lock (errors)
        {
            Assert.All(errors, e => Assert.IsType<Lodestar.Dns.Resolver.DnsResolutionException>(e));
        }
    }

    [Fact]
    public async Task Watch_NameDeletedThenBack_PublishesEmptyThenAddressesAgain()
    {
        await using var dns = await DnsmasqServer.StartAsync(hostsLines: ["127.0.0.2 flip.lodestar.test"], ttlSeconds: 1);
        await using var services = DnsServices.Build(dns.Server);
        var resolver = services.GetRequiredService<IEndpointResolver>();
        var counts = new List<int>();
        using var watch = resolver.Watch("flip.lodestar.test", "dns", s => { lock (counts) { counts.Add(s.Count); } });
        await resolver.GetEndpointsAsync("flip.lodestar.test", "dns");

        await dns.SetHostsAsync([]);
        await Eventually.TrueAsync(() => { lock (counts) { return counts.Contains(0); } }, TimeSpan.FromSeconds(10), "NXDOMAIN publishes an empty set");
        await dns.SetHostsAsync(["127.0.0.3 flip.lodestar.test"]);
        await Eventually.TrueAsync(() => resolver.GetEndpointsAsync("flip.lodestar.test", "dns").Result.Endpoints.Any(e => e.Host == "127.0.0.3"),
            TimeSpan.FromSeconds(10), "the name's return is seen after the negative TTL");
    }
}
