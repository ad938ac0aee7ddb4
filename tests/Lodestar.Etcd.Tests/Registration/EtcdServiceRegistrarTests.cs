using System.Text.Json;
using Lodestar.Etcd.Registration.Internal;
using Lodestar.Etcd.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Etcd;

namespace Lodestar.Etcd.Tests.Registration;

public sealed class EtcdServiceRegistrarTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task RegisterAsync_Value_IsGoNamingEndpointsFormat()
    {
        // Arrange
        await using var etcd = await EtcdServer.StartAsync();
        await using var harness = EtcdHarness.Create(etcd);
        var registration = EtcdHarness.Instance("orders", 5001, "i-1", metadata: new Dictionary<string, string> { ["zone"] = "eu-1", ["version"] = "v2" });

        // Act
        await using var handle = await harness.Registrar.RegisterAsync(registration, default);
        var raw = await etcd.GetAsync("orders/i-1");

        // Assert: the shape Go's endpoints package unmarshals into internal.Update {Op, Addr, Metadata}.
        Assert.NotNull(raw);
        using var document = JsonDocument.Parse(raw);
        var root = document.RootElement;
        Assert.Equal(0, root.GetProperty("Op").GetInt32());
        Assert.Equal("127.0.0.1:5001", root.GetProperty("Addr").GetString());
        Assert.Equal("eu-1", root.GetProperty("Metadata").GetProperty("zone").GetString());
        Assert.Equal("v2", root.GetProperty("Metadata").GetProperty("version").GetString());
        Assert.NotEqual(0, await etcd.GetLeaseAsync("orders/i-1"));
    }

    [Fact]
    public async Task RegisterAsync_WithPrefix_WritesPrefixServiceInstanceKey()
    {
        await using var etcd = await EtcdServer.StartAsync();
        await using var harness = EtcdHarness.Create(etcd, o => o.Prefix = "/services/");

        await using var handle = await harness.Registrar.RegisterAsync(EtcdHarness.Instance("orders", 5001), default);

        Assert.NotNull(await etcd.GetAsync("/services/orders/orders-127.0.0.1-5001"));
        var set = await harness.Resolver.GetEndpointsAsync("orders", "etcd");
        Assert.Equal("127.0.0.1:5001", Assert.Single(set.Endpoints).Address);
    }

    [Fact]
    public async Task KeepAlive_LongerThanTtl_KeyStays()
    {
        await using var etcd = await EtcdServer.StartAsync();
        await using var harness = EtcdHarness.Create(etcd);
        await using var handle = await harness.Registrar.RegisterAsync(EtcdHarness.Instance("orders", 5001, "i-1", ttlSeconds: 2), default);

        // Three TTLs: the key survives only if keep-alives run.
        for (var i = 0; i < 6; i++)
        {
            await Task.Delay(1000);
            Assert.NotNull(await etcd.GetAsync("orders/i-1"));
        }
    }

    [Fact]
    public async Task DeregisterAsync_Handle_RevokesLeaseAndKey()
    {
        await using var etcd = await EtcdServer.StartAsync();
        await using var harness = EtcdHarness.Create(etcd);
        var handle = (EtcdRegistrationHandle)await harness.Registrar.RegisterAsync(EtcdHarness.Instance("orders", 5001, "i-1", ttlSeconds: 30), default);
        var lease = handle.LeaseId;

        await handle.DeregisterAsync(default);
        await handle.DisposeAsync();

        Assert.Null(await etcd.GetAsync("orders/i-1"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => etcd.RevokeLeaseAsync(lease));
    }

    [Fact]
    public async Task DeregisterAsync_ByServiceAndId_RemovesKey()
    {
        await using var etcd = await EtcdServer.StartAsync();
        await using var harness = EtcdHarness.Create(etcd);
        var handle = (EtcdRegistrationHandle)await harness.Registrar.RegisterAsync(EtcdHarness.Instance("orders", 5001, "i-1", ttlSeconds: 30), default);
        await handle.AbandonAsync();

        await harness.Registrar.DeregisterAsync("orders", "i-1", default);

        Assert.Null(await etcd.GetAsync("orders/i-1"));
    }

    [Fact]
    public async Task KeepAlive_LeaseRevokedElsewhere_RecreatesLeaseAndKey()
    {
        // Arrange
        await using var etcd = await EtcdServer.StartAsync();
        await using var harness = EtcdHarness.Create(etcd);
        var handle = (EtcdRegistrationHandle)await harness.Registrar.RegisterAsync(EtcdHarness.Instance("orders", 5001, "i-1", ttlSeconds: 2), default);
        await using var _ = handle;
        var firstLease = handle.LeaseId;

        // Act: the lease vanishes as if it had expired while the process was paused.
        await etcd.RevokeLeaseAsync(firstLease);

        // Assert
        await Eventually.TrueAsync(() => handle.LeaseId != firstLease, s_wait, "a new lease");
        // The handle adopts a new lease only after the key was written with it.
        Assert.Equal(handle.LeaseId, await etcd.GetLeaseAsync("orders/i-1"));
        Assert.Contains(harness.Logs.Entries, e => e.EventId.Name == "EtcdLeaseLost");
    }

    [Fact]
    public async Task Abandon_WithoutRevoke_KeyDisappearsWhenLeaseExpires()
    {
        await using var etcd = await EtcdServer.StartAsync();
        await using var harness = EtcdHarness.Create(etcd);
        using var tracker = new SetTracker(harness.Resolver, "orders");
        var handle = (EtcdRegistrationHandle)await harness.Registrar.RegisterAsync(EtcdHarness.Instance("orders", 5001, "i-1", ttlSeconds: 2), default);
        await Eventually.TrueAsync(() => tracker.Addresses.Count == 1, s_wait, "registered");

        await handle.AbandonAsync();

        await Eventually.TrueAsync(() => tracker.Addresses.Count == 0, s_wait, "the lease expires and the watcher sees the delete");
        Assert.Null(await etcd.GetAsync("orders/i-1"));
    }
}
