using Lodestar.Etcd.Client.Internal;
using Lodestar.Etcd.Registration.Internal;
using Lodestar.Etcd.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Etcd;
using Microsoft.Extensions.Logging;

namespace Lodestar.Etcd.Tests.Client;

/// <summary>An <see cref="EtcdOptions.Address"/> listing several members: fail-over against real etcd processes and a real cluster.</summary>
public sealed class EtcdFailoverTests
{
    private const string Password = "Fa1l-0ver-secret";
    private const string EndpointFailed = "EtcdEndpointFailed";
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private static string Go(string addr) => $"{{\"Op\":0,\"Addr\":\"{addr}\",\"Metadata\":null}}";

    /// <summary>A loopback URL nothing listens on: connections to it are refused.</summary>
    private static string DeadUrl() => $"http://127.0.0.1:{LoopbackPorts.Free(1)[0]}";

    [Fact]
    public async Task DeadEndpointFirst_ResolutionAndRegistrationUseTheLiveOne()
    {
        // Arrange: the first entry refuses connections; spaces around the comma are allowed.
        await using var etcd = await EtcdServer.StartAsync();
        await etcd.PutAsync("orders/a", Go("127.0.0.1:7001"));
        var dead = DeadUrl();
        await using var harness = EtcdHarness.Create($"{dead} , {etcd.ClientUrl}");

        // Act
        var set = await harness.Resolver.GetEndpointsAsync("orders", "etcd");
        await using var handle = await harness.Registrar.RegisterAsync(EtcdHarness.Instance("orders", 5001, "i-1"), default);

        // Assert: one move to the live member, which every later call kept using.
        Assert.Equal("127.0.0.1:7001", Assert.Single(set.Endpoints).Address);
        Assert.NotNull(await etcd.GetAsync("orders/i-1"));
        Assert.Equal(etcd.ClientUrl, harness.Client.DisplayAddress);
        var moved = Assert.Single(harness.Logs.Entries, e => e.EventId.Name == EndpointFailed);
        Assert.Equal(LogLevel.Information, moved.Level);
        Assert.StartsWith($"etcd endpoint {dead} failed (", moved.Message, StringComparison.Ordinal);
        Assert.EndsWith($"; using {etcd.ClientUrl}", moved.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EveryEndpointDead_TriesEachOnceAndNamesThemAll()
    {
        // Arrange
        var urls = LoopbackPorts.Free(3).Select(p => $"http://127.0.0.1:{p}").ToArray();
        await using var harness = EtcdHarness.Create(string.Join(",", urls));

        // Act
        var error = await Assert.ThrowsAsync<EtcdException>(() => harness.Client.RangePrefixAsync("orders/", default));

        // Assert: three members, three moves (the last one back to the first), then the last failure naming all three.
        Assert.True(error.IsUnreachable);
        Assert.StartsWith($"etcd at {urls[2]} is unreachable for v3/kv/range", error.Message, StringComparison.Ordinal);
        Assert.All(urls, u => Assert.Contains(u, error.Message, StringComparison.Ordinal));
        Assert.Equal(3, harness.Logs.Entries.Count(e => e.EventId.Name == EndpointFailed));
        Assert.Equal(urls[0], harness.Client.DisplayAddress);
    }

    [Fact]
    public async Task Cluster_MemberInUseKilled_WatchLosesNothingAndLeaseStaysAlive()
    {
        // Arrange: the client lists all three members, so it uses the first until that one dies. One client serves
        // the watch and a registration with a 2 s TTL.
        await using var cluster = await EtcdCluster.StartAsync(3);
        var (used, other) = (cluster.Members[0], cluster.Members[1]);
        await using var harness = EtcdHarness.Create(cluster.ClientUrls);
        using var tracker = new SetTracker(harness.Resolver, "orders");
        var handle = (EtcdRegistrationHandle)await harness.Registrar.RegisterAsync(EtcdHarness.Instance("orders", 5001, "i-1", ttlSeconds: 2), default);
        await using var _ = handle;
        var lease = handle.LeaseId;
        await other.PutAsync("orders/a", Go("127.0.0.1:7001"));
        await Eventually.TrueAsync(() => tracker.Addresses.SequenceEqual(["127.0.0.1:5001", "127.0.0.1:7001"]), s_wait, "the watch follows changes");
        Assert.Equal(used.ClientUrl, harness.Client.DisplayAddress);

        // Act: crash the member in use, then (once the others have a leader, which the dead member may have been)
        // change the registry through another member while the watch is cut.
        await used.KillAsync();
        await cluster.WaitForLeaderAsync();
        await other.PutAsync("orders/b", Go("127.0.0.1:7002"));
        await other.DeleteAsync("orders/a");

        // Assert
        await Eventually.TrueAsync(() => tracker.Addresses.SequenceEqual(["127.0.0.1:5001", "127.0.0.1:7002"]), s_wait,
            $"the changes made after the kill reach the watcher\n{cluster.RecentOutput}");
        // Past the TTL again: the key is still bound to its first lease only if keep-alives reached another member.
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        Assert.Equal(lease, await other.GetLeaseAsync("orders/i-1"));
        Assert.Equal(lease, handle.LeaseId);
        Assert.NotEqual(used.ClientUrl, harness.Client.DisplayAddress);
        Assert.Contains(harness.Logs.Entries, e => e.EventId.Name == EndpointFailed && e.Message.Contains(used.ClientUrl, StringComparison.Ordinal));
        Assert.DoesNotContain(harness.Logs.Entries, e => e.EventId.Name == "EtcdLeaseLost");
    }

    [Fact]
    public async Task Cluster_NextMemberExpiredTheToken_AuthenticatesAgainThere()
    {
        // Arrange: a simple token reaches every member, but each member expires it after --auth-token-ttl without use
        // there (checked once a second). The client keeps using the first member well past that TTL, so only the
        // first still knows the token.
        await using var cluster = await EtcdCluster.StartAsync(3, "--auth-token-ttl=2");
        var (used, next) = (cluster.Members[0], cluster.Members[1]);
        await next.EnableAuthAsync("root", Password);
        await next.PutAsync("orders/a", Go("127.0.0.1:7001"));
        await using var harness = EtcdHarness.Create(cluster.ClientUrls, o =>
        {
            o.Username = "root";
            o.Password = Password;
        });
        var inUse = System.Diagnostics.Stopwatch.StartNew();
        while (inUse.Elapsed < TimeSpan.FromSeconds(3.5))
        {
            Assert.Single((await harness.Client.RangePrefixAsync("orders/", default)).Kvs);
            await Task.Delay(100);
        }

        Assert.Equal(used.ClientUrl, harness.Client.DisplayAddress);
        var before = harness.Logs.Entries.Count;

        // Act: the member in use dies; once the others have a leader, the client registers.
        await used.KillAsync();
        await cluster.WaitForLeaderAsync();
        await using var handle = await harness.Registrar.RegisterAsync(EtcdHarness.Instance("orders", 5001, "i-1"), default);

        // Assert: moved on to the next member, whose rejection of the old token led to a new one from it.
        Assert.NotNull(await next.GetAsync("orders/i-1"));
        Assert.Equal(next.ClientUrl, harness.Client.DisplayAddress);
        var after = harness.Logs.Entries.Skip(before).Where(e => e.EventId.Name is EndpointFailed or "EtcdTokenRejected" or "EtcdAuthenticated").ToList();
        Assert.Equal([EndpointFailed, "EtcdTokenRejected", "EtcdAuthenticated"], after.Select(e => e.EventId.Name));
        Assert.Contains(used.ClientUrl, after[0].Message, StringComparison.Ordinal);
        Assert.Contains(next.ClientUrl, after[1].Message, StringComparison.Ordinal);
        Assert.Contains(next.ClientUrl, after[2].Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, harness.Logs.AllText, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"\b[A-Za-z]{16}\.[0-9]+\b", harness.Logs.AllText);
    }
}
