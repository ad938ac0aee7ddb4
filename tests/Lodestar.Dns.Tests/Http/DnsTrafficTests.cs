using System.Diagnostics;
using System.Net;
using Lodestar.Http.Internal;
using Lodestar.Testing;
using Lodestar.Testing.Dns;
using Xunit.Abstractions;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Dns.Tests.Http;

public sealed class DnsTrafficTests
{
    private const int Ttl = 2;
    private readonly ITestOutputHelper _output;

    public DnsTrafficTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public async Task HttpClient_AddressChangesInDns_TrafficMovesWithinTtlAndOldConnectionsAreRetired()
    {
        // Arrange: two real backends on 127.0.0.2 and 127.0.0.3, same port; DNS points at the first.
        await using var oldBackend = await TestBackend.StartAsync("old", bindAddress: IPAddress.Parse("127.0.0.2"));
        await using var newBackend = await TestBackend.StartAsync("new", port: oldBackend.Port, bindAddress: IPAddress.Parse("127.0.0.3"));
        await using var dns = await DnsmasqServer.StartAsync(hostsLines: ["127.0.0.2 orders.lodestar.test"], ttlSeconds: Ttl);
        await using var services = DnsServices.Build(dns.Server, o => o.DefaultPort = oldBackend.Port, s =>
        {
            s.Configure<LodestarOptions>(o => o.RetireQuietPeriod = TimeSpan.FromMilliseconds(500));
            s.AddHttpClient("orders").AddLodestar(o => o.Source = "dns");
        });
        var client = services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        var retirer = services.GetRequiredService<ConnectionRetirer>();

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal("old", await client.GetStringAsync("http://orders.lodestar.test/"));
        }

        Assert.True(retirer.CountOpen(oldBackend.Address) > 0, "connections go through the tracking connect callback");

        // Act: move the name to the new address.
        await dns.SetHostsAsync(["127.0.0.3 orders.lodestar.test"]);
        var changed = Stopwatch.StartNew();
        var firstNew = TimeSpan.Zero;
        for (var i = 0; i < 400 && changed.Elapsed < TimeSpan.FromSeconds(Ttl + 10); i++)
        {
            if (await client.GetStringAsync("http://orders.lodestar.test/") == "new")
            {
                firstNew = changed.Elapsed;
                break;
            }

            await Task.Delay(25);
        }

        var oldCount = oldBackend.Requests;
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal("new", await client.GetStringAsync("http://orders.lodestar.test/"));
        }

        _output.WriteLine($"traffic moved {firstNew.TotalMilliseconds:0} ms after the DNS change (TTL {Ttl} s)");

        // Assert: within TTL + 1 s the new address takes traffic and the old one none after that.
        Assert.NotEqual(TimeSpan.Zero, firstNew);
        Assert.True(firstNew <= TimeSpan.FromSeconds(Ttl + 1), $"traffic moved after {firstNew.TotalMilliseconds:0} ms");
        Assert.Equal(oldCount, oldBackend.Requests);
        await Eventually.TrueAsync(() => retirer.CountOpen(oldBackend.Address) == 0, TimeSpan.FromSeconds(5),
            "idle pooled connections to the removed address are closed well before PooledConnectionIdleTimeout (30 s)");
        Assert.True(retirer.CountOpen(newBackend.Address) > 0);
    }
}
