using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Google.Protobuf.WellKnownTypes;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Testing;
using Lodestar.Testing.Xds;
using Lodestar.Xds.Client.Internal;
using Lodestar.Xds.Clusters;
using Lodestar.Xds.Clusters.Internal;
using Lodestar.Xds.Discovery.Internal;
using Lodestar.Xds.Resources;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;
using static Lodestar.Xds.Tests.Infrastructure.XdsTrafficHarness;
using Cluster = Envoy.Config.Cluster.V3.Cluster;

namespace Lodestar.Xds.Tests.Clusters;

public sealed class LogicalDnsClusterTests
{
    private const string Name = "dns-cluster";

    [Fact]
    public void Map_LogicalDnsCluster_KeepsHostPortRefreshRateAndFamily()
    {
        var cluster = LogicalDns(Name, "backend.example", 8443, Cluster.Types.DnsLookupFamily.V4Only);
        cluster.DnsRefreshRate = Duration.FromTimeSpan(TimeSpan.FromSeconds(30));

        var settings = ClusterDecoder.Map(cluster);

        Assert.Equal(XdsClusterKind.LogicalDns, settings.Kind);
        Assert.Equal("backend.example", settings.DnsHost);
        Assert.Equal(8443, settings.DnsPort);
        Assert.Equal(TimeSpan.FromSeconds(30), settings.DnsRefreshRate);
        Assert.Equal(XdsDnsLookupFamily.V4Only, settings.DnsLookupFamily);
        Assert.Null(settings.InlineAssignment);
    }

    [Fact]
    public void Map_LogicalDnsWithoutRefreshRate_UsesFiveSecondsAndAuto()
    {
        var settings = ClusterDecoder.Map(LogicalDns(Name, "backend.example", 80));

        Assert.Equal(TimeSpan.FromSeconds(5), settings.DnsRefreshRate);
        Assert.Equal(XdsDnsLookupFamily.Auto, settings.DnsLookupFamily);
    }

    [Theory]
    [InlineData("no-assignment", "exactly one locality")]
    [InlineData("two-localities", "exactly one locality")]
    [InlineData("two-endpoints", "exactly one lb_endpoint")]
    [InlineData("empty-host", "empty address")]
    [InlineData("port-zero", "port 0")]
    [InlineData("no-socket", "no socket_address")]
    public void Decode_InvalidLogicalDnsCluster_IsRejectedNamingTheClusterAndTheProblem(string shape, string expected)
    {
        var cluster = LogicalDns(Name, "backend.example", 80);
        switch (shape)
        {
            case "no-assignment":
                cluster.LoadAssignment = null;
                break;
            case "two-localities":
                cluster.LoadAssignment.Endpoints.Add(Locality("b", 1, 0, Endpoint("other.example", 80)));
                break;
            case "two-endpoints":
                cluster.LoadAssignment.Endpoints[0].LbEndpoints.Add(Endpoint("other.example", 80));
                break;
            case "empty-host":
                cluster.LoadAssignment.Endpoints[0].LbEndpoints[0].Endpoint.Address.SocketAddress.Address = "";
                break;
            case "port-zero":
                cluster.LoadAssignment.Endpoints[0].LbEndpoints[0].Endpoint.Address.SocketAddress.PortValue = 0;
                break;
            case "no-socket":
                cluster.LoadAssignment.Endpoints[0].LbEndpoints[0].Endpoint.Address = new Address();
                break;
        }

        var result = ClusterDecoder.Instance.Decode(Any.Pack(cluster));

        Assert.NotNull(result.Error);
        Assert.Contains($"Cluster '{Name}'", result.Error, StringComparison.Ordinal);
        Assert.Contains(expected, result.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void Decode_StrictDnsOrOriginalDst_IsStillRejected(int type)
    {
        var cluster = LogicalDns(Name, "backend.example", 80);
        cluster.Type = (Cluster.Types.DiscoveryType)type;

        var result = ClusterDecoder.Instance.Decode(Any.Pack(cluster));

        Assert.NotNull(result.Error);
        Assert.Contains("is not supported", result.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1, "10.0.0.1")]
    [InlineData(2, "fd00::1")]
    [InlineData(0, "fd00::1")]
    [InlineData(3, "10.0.0.1")]
    [InlineData(4, "10.0.0.1")]
    public void PickAddress_LookupFamily_PicksTheFirstAddressOfThePreferredKind(int lookupFamily, string expected)
    {
        var family = (XdsDnsLookupFamily)lookupFamily;
        IPAddress[] addresses = [IPAddress.Parse("10.0.0.1"), IPAddress.Parse("fd00::1"), IPAddress.Parse("10.0.0.2")];

        Assert.Equal(IPAddress.Parse(expected), XdsEndpointSource.PickAddress(addresses, family));
    }

    [Fact]
    public void PickAddress_OnlyTheOtherFamily_FallsBackUnlessOnly()
    {
        IPAddress[] v4 = [IPAddress.Parse("10.0.0.1")];

        Assert.Equal(IPAddress.Parse("10.0.0.1"), XdsEndpointSource.PickAddress(v4, XdsDnsLookupFamily.Auto));
        Assert.Null(XdsEndpointSource.PickAddress(v4, XdsDnsLookupFamily.V6Only));
    }

    [Fact]
    public async Task Source_RefreshRateElapses_ResolvesAgainAndFollowsTheChangedAddress()
    {
        await using var server = await FakeXdsServer.StartAsync();
        var cluster = LogicalDns(Name, "backend.example", 8080, Cluster.Types.DnsLookupFamily.V4Only);
        cluster.DnsRefreshRate = Duration.FromTimeSpan(TimeSpan.FromSeconds(7));
        server.SetResource(XdsTypeUrls.Cluster, Name, cluster);
        var answers = new Queue<IPAddress[]>([[IPAddress.Parse("10.1.0.1")], [IPAddress.Parse("10.1.0.2"), IPAddress.Parse("10.1.0.3")]]);
        var lookups = new List<string>();
        var clock = new RecordingTimeProvider();
        await using var run = Run(server, clock, (host, _) =>
        {
            lock (lookups)
            {
                lookups.Add(host);
                return Task.FromResult(answers.Dequeue());
            }
        });

        Assert.Equal("10.1.0.1:8080", Assert.Single(await run.NextEndpointsAsync()).Address);
        Assert.Equal(TimeSpan.FromSeconds(7), await clock.NextFiniteTimerAsync());
        clock.Advance(TimeSpan.FromSeconds(7));

        Assert.Equal("10.1.0.2:8080", Assert.Single(await run.NextEndpointsAsync()).Address);
        lock (lookups)
        {
            Assert.Equal(["backend.example", "backend.example"], lookups);
        }
    }

    [Fact]
    public async Task Source_ResolutionFails_ReportsItAndKeepsTheLastGoodAddress()
    {
        await using var server = await FakeXdsServer.StartAsync();
        server.SetResource(XdsTypeUrls.Cluster, Name, LogicalDns(Name, "backend.example", 8080, Cluster.Types.DnsLookupFamily.V4Only));
        var calls = 0;
        var clock = new RecordingTimeProvider();
        await using var run = Run(server, clock, (_, _) => Interlocked.Increment(ref calls) switch
        {
            1 => Task.FromResult<IPAddress[]>([IPAddress.Parse("10.1.0.1")]),
            2 => Task.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound)),
            3 => Task.FromResult<IPAddress[]>([IPAddress.Parse("fd00::9")]),
            _ => Task.FromResult<IPAddress[]>([IPAddress.Parse("10.1.0.1")]),
        });

        Assert.Equal("10.1.0.1:8080", Assert.Single(await run.NextEndpointsAsync()).Address);
        Assert.Equal(TimeSpan.FromSeconds(5), await clock.NextFiniteTimerAsync());
        clock.Advance(TimeSpan.FromSeconds(5));
        var failed = await run.NextErrorAsync();
        Assert.Contains($"Cluster '{Name}'", failed.Message, StringComparison.Ordinal);
        Assert.Contains("'backend.example'", failed.Message, StringComparison.Ordinal);
        Assert.Contains("keeping 10.1.0.1", failed.Message, StringComparison.Ordinal);

        // An answer with no IPv4 address is a failure too; the cluster still has no other endpoint published.
        await clock.NextFiniteTimerAsync();
        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Contains("no address", (await run.NextErrorAsync()).Message, StringComparison.Ordinal);

        // The same address again publishes nothing new.
        await clock.NextFiniteTimerAsync();
        clock.Advance(TimeSpan.FromSeconds(5));
        await clock.NextFiniteTimerAsync();
        Assert.Equal(4, Volatile.Read(ref calls));
        Assert.False(run.Endpoints.Reader.TryRead(out _));
    }

    [Fact]
    public async Task Source_ClusterUpdateNamesAnotherHost_ResolvesTheNewHost()
    {
        await using var server = await FakeXdsServer.StartAsync();
        server.SetResource(XdsTypeUrls.Cluster, Name, LogicalDns(Name, "old.example", 8080));
        var clock = new RecordingTimeProvider();
        await using var run = Run(server, clock, (host, _) => Task.FromResult<IPAddress[]>(
            [IPAddress.Parse(host == "old.example" ? "10.2.0.1" : "10.2.0.2")]));
        Assert.Equal("10.2.0.1:8080", Assert.Single(await run.NextEndpointsAsync()).Address);

        server.SetResource(XdsTypeUrls.Cluster, Name, LogicalDns(Name, "new.example", 9090));

        Assert.Equal("10.2.0.2:9090", Assert.Single(await run.NextEndpointsAsync()).Address);
    }

    [Fact]
    public async Task Source_FirstResolutionFails_PublishesNoEndpointAndReportsIt()
    {
        await using var server = await FakeXdsServer.StartAsync();
        server.SetResource(XdsTypeUrls.Cluster, Name, LogicalDns(Name, "missing.example", 8080));
        var clock = new RecordingTimeProvider();
        await using var run = Run(server, clock, (_, _) => Task.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound)));

        var error = await run.NextErrorAsync();

        Assert.Contains("'missing.example'", error.Message, StringComparison.Ordinal);
        Assert.Contains("no endpoint yet", error.Message, StringComparison.Ordinal);
        Assert.False(run.Endpoints.Reader.TryRead(out _));
    }

    [Fact]
    public async Task Send_LogicalDnsClusterForLocalhost_ReachesTheBackend()
    {
        // The route names a cluster that exists only as LOGICAL_DNS (no EDS resource of that name).
        await using var h = await StartAsync(["web"]);
        h.Server.SetResource(XdsTypeUrls.Cluster, "web-by-name", LogicalDns("web-by-name", "localhost", h.Backends["web"].Port, Cluster.Types.DnsLookupFamily.V4Only));
        h.SetRoutes(PrefixRoute("/", "web-by-name"));

        for (var i = 0; i < 3; i++)
        {
            using var response = await h.Http.GetAsync(BaseUrl + "/items");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(3, h.Backends["web"].Requests);
    }

    private static Cluster LogicalDns(string name, string host, int port, Cluster.Types.DnsLookupFamily family = Cluster.Types.DnsLookupFamily.Auto) => new()
    {
        Name = name,
        Type = Cluster.Types.DiscoveryType.LogicalDns,
        DnsLookupFamily = family,
        LoadAssignment = new ClusterLoadAssignment
        {
            ClusterName = name,
            Endpoints = { Locality("a", 1, 0, Endpoint(host, port)) },
        },
    };

    private static SourceRun Run(FakeXdsServer server, TimeProvider clock, Func<string, CancellationToken, Task<IPAddress[]>> resolve)
    {
        var clients = new XdsClientProvider(Options.Create(new XdsOptions { BootstrapJson = server.Bootstrap() }), TimeProvider.System, NullLoggerFactory.Instance);
        var source = new XdsEndpointSource(Name, clients, NullLogger.Instance, timeProvider: clock, resolveHost: resolve);
        return new SourceRun(source, clients);
    }

    private sealed class SourceRun : IEndpointObserver, IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _run;
        private readonly XdsClientProvider _clients;

        public SourceRun(XdsEndpointSource source, XdsClientProvider clients)
        {
            _clients = clients;
            _run = source.RunAsync(this, _stop.Token);
        }

        public Channel<IReadOnlyList<DiscoveredEndpoint>> Endpoints { get; } = Channel.CreateUnbounded<IReadOnlyList<DiscoveredEndpoint>>();

        public Channel<Exception> Errors { get; } = Channel.CreateUnbounded<Exception>();

        public void OnEndpoints(IReadOnlyList<DiscoveredEndpoint> endpoints) => Endpoints.Writer.TryWrite(endpoints);

        public void OnError(Exception error) => Errors.Writer.TryWrite(error);

        public async Task<IReadOnlyList<DiscoveredEndpoint>> NextEndpointsAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            return await Endpoints.Reader.ReadAsync(timeout.Token);
        }

        public async Task<Exception> NextErrorAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            return await Errors.Reader.ReadAsync(timeout.Token);
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _run;
            _stop.Dispose();
            await _clients.DisposeAsync();
        }
    }
}
