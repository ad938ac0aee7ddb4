using Lodestar.Testing.Dns;

namespace Lodestar.Dns.Tests;

/// <summary>One dnsmasq with a fixed zone, shared by the tests of a class that only read it.</summary>
public sealed class ZoneFixture : IAsyncLifetime
{
    public const int Ttl = 7;

    public DnsmasqServer Dns { get; private set; } = null!;

    public async Task InitializeAsync()
        => Dns = await DnsmasqServer.StartAsync(
            [
                "host-record=a.lodestar.test,127.0.0.5,fd00::5",
                "host-record=b.lodestar.test,127.0.0.6",
                "host-record=v6only.lodestar.test,fd00::6",
                "srv-host=_http._tcp.svc.lodestar.test,a.lodestar.test,8080,1,10",
                "srv-host=_http._tcp.svc.lodestar.test,b.lodestar.test,8081,2,20",
                "srv-host=_http._tcp.orders.shop.svc.lodestar.test,b.lodestar.test,9090,0,5",
                "cname=alias.lodestar.test,a.lodestar.test",
                "cname=alias2.lodestar.test,alias.lodestar.test",
                "txt-record=txt.lodestar.test,\"hello\"",
            ],
            [
                "127.0.0.2 web.lodestar.test",
                "127.0.0.7 orders.shop.svc.lodestar.test",
                .. Enumerable.Range(1, 100).Select(i => $"127.0.1.{i} big.lodestar.test"),
            ],
            Ttl);

    public async Task DisposeAsync() => await Dns.DisposeAsync();
}
