using System.Diagnostics;
using System.Net;
using Lodestar.Dns.Resolver;
using Lodestar.Dns.Resolver.Internal;
using Lodestar.Testing.Dns;

namespace Lodestar.Dns.Tests.Resolver;

public sealed class DnsStubResolverTests : IClassFixture<ZoneFixture>
{
    private readonly ZoneFixture _zone;

    public DnsStubResolverTests(ZoneFixture zone) => _zone = zone;

    private DnsStubResolver Resolver(IReadOnlyList<string>? search = null, int ndots = 1, ushort payload = 1232)
        => TestResolvers.Create([_zone.Dns.EndPoint], search: search, ndots: ndots, payload: payload);

    [Fact]
    public async Task LookupAsync_ARecord_ReturnsAddressAndTtl()
    {
        var result = await Resolver().LookupAsync("web.lodestar.test", DnsRecordType.A, CancellationToken.None);

        Assert.Equal(DnsLookupStatus.Success, result.Status);
        Assert.Equal(IPAddress.Parse("127.0.0.2"), Assert.Single(result.Records).Address);
        Assert.Equal((uint)ZoneFixture.Ttl, result.Ttl);
    }

    [Fact]
    public async Task LookupAsync_AaaaRecord_ReturnsIpv6Address()
    {
        var result = await Resolver().LookupAsync("a.lodestar.test", DnsRecordType.AAAA, CancellationToken.None);

        Assert.Equal(IPAddress.Parse("fd00::5"), Assert.Single(result.Records).Address);
    }

    [Fact]
    public async Task LookupAsync_SrvRecords_ReturnsPriorityWeightPortAndTarget()
    {
        var result = await Resolver().LookupAsync("_http._tcp.svc.lodestar.test", DnsRecordType.SRV, CancellationToken.None);

        var srv = result.Records.Select(r => r.Srv!.Value).OrderBy(s => s.Port).ToList();
        Assert.Equal(2, srv.Count);
        Assert.Equal(new SrvData(1, 10, 8080, "a.lodestar.test"), srv[0]);
        Assert.Equal(new SrvData(2, 20, 8081, "b.lodestar.test"), srv[1]);
    }

    [Fact]
    public async Task LookupAsync_CnameChain_FollowsToAddresses()
    {
        var result = await Resolver().LookupAsync("alias2.lodestar.test", DnsRecordType.A, CancellationToken.None);

        Assert.Equal(DnsLookupStatus.Success, result.Status);
        Assert.Equal("a.lodestar.test", result.Name);
        Assert.Equal(IPAddress.Parse("127.0.0.5"), Assert.Single(result.Records).Address);
    }

    [Fact]
    public async Task LookupAsync_UnknownName_ReturnsNameErrorWithSoaTtl()
    {
        var result = await Resolver().LookupAsync("nope.lodestar.test", DnsRecordType.A, CancellationToken.None);

        Assert.Equal(DnsLookupStatus.NameError, result.Status);
        Assert.Empty(result.Records);
        // RFC 2308: min(SOA TTL, SOA MINIMUM); dnsmasq sets both from auth-ttl.
        Assert.Equal((uint)ZoneFixture.Ttl, result.Ttl);
    }

    [Fact]
    public async Task LookupAsync_NameWithoutThatType_ReturnsNoData()
    {
        var result = await Resolver().LookupAsync("v6only.lodestar.test", DnsRecordType.A, CancellationToken.None);

        Assert.Equal(DnsLookupStatus.NoData, result.Status);
        Assert.NotNull(result.Ttl);
    }

    [Fact]
    public async Task LookupAsync_PodSearchListWithNdots5_FindsShortName()
    {
        var resolver = Resolver(search: ["default.svc.lodestar.test", "svc.lodestar.test", "lodestar.test"], ndots: 5);

        var result = await resolver.LookupAsync("web", DnsRecordType.A, CancellationToken.None);

        Assert.Equal("web.lodestar.test", result.Name);
        Assert.Equal(IPAddress.Parse("127.0.0.2"), Assert.Single(result.Records).Address);
    }

    [Fact]
    public void GetCandidates_Ndots_OrdersAbsoluteAndSearchNames()
    {
        var resolver = Resolver(search: ["ns.svc.cluster.local", "svc.cluster.local"], ndots: 5);

        Assert.Equal(["orders.ns.svc.cluster.local", "orders.svc.cluster.local", "orders"], resolver.GetCandidates("orders"));
        Assert.Equal(["a.b.c.d.e.f", "a.b.c.d.e.f.ns.svc.cluster.local", "a.b.c.d.e.f.svc.cluster.local"], resolver.GetCandidates("a.b.c.d.e.f"));
        Assert.Equal(["orders.shop"], resolver.GetCandidates("orders.shop."));
    }

    [Fact]
    public async Task LookupAsync_HundredRecords_FallsBackToTcpAndReturnsAll()
    {
        // 100 A records do not fit in 1232 bytes: dnsmasq sets TC and the resolver asks again over TCP.
        var result = await Resolver().LookupAsync("big.lodestar.test", DnsRecordType.A, CancellationToken.None);

        Assert.Equal(100, result.Records.Count);
        Assert.Equal(100, result.Records.Select(r => r.Address).Distinct().Count());
    }

    [Fact]
    public async Task QueryAsync_PlainDnsTruncatedAnswer_RetriesOverTcp()
    {
        var message = await Resolver(payload: 0).QueryAsync("big.lodestar.test", DnsRecordType.A, CancellationToken.None);

        // QueryAsync already retried over TCP; the complete answer proves it.
        Assert.False(message.IsTruncated);
        Assert.Equal(100, message.Answers.Count);
    }

    [Fact]
    public async Task LookupAsync_FirstServerSilent_FailsOverToNext()
    {
        using var silent = new SilentDnsServer();
        var resolver = TestResolvers.Create([silent.EndPoint, _zone.Dns.EndPoint], timeout: TimeSpan.FromMilliseconds(300));
        var watch = Stopwatch.StartNew();

        var result = await resolver.LookupAsync("web.lodestar.test", DnsRecordType.A, CancellationToken.None);

        Assert.Equal(IPAddress.Parse("127.0.0.2"), Assert.Single(result.Records).Address);
        Assert.True(silent.WasAsked);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), "failover is bounded by the per-attempt timeout");
    }

    [Fact]
    public async Task LookupAsync_AllServersSilent_ThrowsResolutionErrorAfterAttempts()
    {
        using var silent = new SilentDnsServer();
        var resolver = TestResolvers.Create([silent.EndPoint], timeout: TimeSpan.FromMilliseconds(100), attempts: 2);

        var error = await Assert.ThrowsAsync<DnsResolutionException>(() => resolver.LookupAsync("web.lodestar.test", DnsRecordType.A, CancellationToken.None));

        Assert.Contains("2 attempt(s)", error.Message, StringComparison.Ordinal);
        Assert.IsType<TimeoutException>(error.InnerException);
    }

    [Fact]
    public async Task LookupAsync_NameOutsideZone_ThrowsResolutionError()
    {
        // dnsmasq is authoritative only for lodestar.test and refuses the rest.
        await Assert.ThrowsAsync<DnsResolutionException>(() => Resolver().LookupAsync("example.org.", DnsRecordType.A, CancellationToken.None));
    }
}
