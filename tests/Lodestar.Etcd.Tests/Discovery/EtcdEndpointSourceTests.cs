using System.Diagnostics;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Etcd.Client.Internal;
using Lodestar.Etcd.Discovery.Internal;
using Lodestar.Etcd.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Etcd;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Lodestar.Etcd.Tests.Discovery;

public sealed class EtcdEndpointSourceTests(ITestOutputHelper output)
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private static string Go(string addr, string metadata = "null") => $"{{\"Op\":0,\"Addr\":\"{addr}\",\"Metadata\":{metadata}}}";

    private static EtcdEndpointSource CreateSource(EtcdHarness harness, string service)
    {
        var provider = harness.Services.GetServices<IEndpointSourceProvider>().OfType<EtcdEndpointSourceProvider>().Single();
        Assert.True(provider.TryCreateSource(service, out var source));
        return (EtcdEndpointSource)source;
    }

    [Fact]
    public async Task Resolve_RegisteredInOtherClient_AppearsWithinOneSecond()
    {
        // Arrange: one process watches, another registers and deregisters an instance, several rounds.
        const int Rounds = 5;
        await using var etcd = await EtcdServer.StartAsync();
        await using var watcher = EtcdHarness.Create(etcd);
        await using var registrant = EtcdHarness.Create(etcd);
        Assert.Equal(0, (await watcher.Resolver.GetEndpointsAsync("orders", "etcd")).Count);
        TaskCompletionSource<long>? seen = null;
        using var subscription = watcher.Resolver.Watch("orders", "etcd", set =>
        {
            if (set.Count == 1)
            {
                seen?.TrySetResult(Stopwatch.GetTimestamp());
            }
        });
        var samples = new List<double>();

        for (var round = 0; round < Rounds; round++)
        {
            // Act: the time runs from the call to RegisterAsync (lease grant, then put) to the watcher's new set.
            var appeared = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref seen, appeared);
            var start = Stopwatch.GetTimestamp();
            var handle = await registrant.Registrar.RegisterAsync(EtcdHarness.Instance("orders", 5001), default);
            samples.Add(Stopwatch.GetElapsedTime(start, await appeared.Task.WaitAsync(s_wait)).TotalMilliseconds);
            var set = await watcher.Resolver.GetEndpointsAsync("orders", "etcd");
            Assert.Equal("127.0.0.1:5001", Assert.Single(set.Endpoints).Address);
            await handle.DisposeAsync();
            using var tracker = new SetTracker(watcher.Resolver, "orders");
            await Eventually.TrueAsync(() => tracker.Latest?.Count == 0, s_wait, "deregistered");
        }

        // Assert
        output.WriteLine($"RegisterAsync call -> visible in another client's set, {Rounds} rounds (ms): {string.Join(", ", samples.Select(s => s.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)))}");
        Assert.All(samples, s => Assert.True(s < 1000, $"took {s} ms"));
    }

    [Fact]
    public async Task RunAsync_GoNamingEndpointsValue_IsDiscoveredWithMetadata()
    {
        // Arrange: exactly what Go's endpoints.Manager("orders").AddEndpoint("orders/i1", {Addr, Metadata}) writes.
        await using var etcd = await EtcdServer.StartAsync();
        await etcd.PutAsync("orders/i1", Go("10.0.0.5:8080", """{"zone":"eu-1","weight":5,"version":"v2","nested":{"a":1}}"""));
        await etcd.PutAsync("orders/i2", Go("orders-2.internal:9090"));
        await etcd.PutAsync("ordersx/i3", Go("10.0.0.9:1"));
        await using var harness = EtcdHarness.Create(etcd);

        // Act
        var set = await harness.Resolver.GetEndpointsAsync("orders", "etcd");

        // Assert
        Assert.Equal(2, set.Count);
        var first = set.Endpoints.Single(e => e.Host == "10.0.0.5");
        Assert.Equal(8080, first.Port);
        Assert.Equal("eu-1", first.Zone);
        Assert.Equal(5, first.Weight);
        Assert.Equal("v2", first.Metadata["version"]);
        Assert.False(first.Metadata.ContainsKey("nested"));
        Assert.Contains(set.Endpoints, e => e.Address == "orders-2.internal:9090");
    }

    [Fact]
    public async Task RunAsync_Prefix_ReadsOnlyKeysUnderPrefix()
    {
        await using var etcd = await EtcdServer.StartAsync();
        await etcd.PutAsync("/services/orders/a", Go("127.0.0.1:7001"));
        await etcd.PutAsync("orders/b", Go("127.0.0.1:7002"));
        await using var harness = EtcdHarness.Create(etcd, o => o.Prefix = "/services/");

        var set = await harness.Resolver.GetEndpointsAsync("orders", "etcd");

        Assert.Equal("127.0.0.1:7001", Assert.Single(set.Endpoints).Address);
    }

    [Fact]
    public async Task RunAsync_MalformedValue_ReportedNamingKeyAndSkipped()
    {
        // Arrange
        await using var etcd = await EtcdServer.StartAsync();
        await etcd.PutAsync("orders/good", Go("127.0.0.1:7001"));
        await etcd.PutAsync("orders/bad", "{not json");
        await using var harness = EtcdHarness.Create(etcd);
        var source = CreateSource(harness, "orders");
        var observer = new RecordingObserver();
        using var stop = new CancellationTokenSource();
        var run = source.RunAsync(observer, stop.Token);

        // Act: a good set at start, then a bad write over a good key, then another good key.
        await Eventually.TrueAsync(() => observer.Current is { Count: 1 }, s_wait, "the initial range");
        await etcd.PutAsync("orders/good", Go("127.0.0.1:99999"));
        await etcd.PutAsync("orders/other", Go("127.0.0.1:7003"));
        await Eventually.TrueAsync(() => observer.Addresses.SequenceEqual(["127.0.0.1:7003"]), s_wait, "the bad write dropped, the other key added");
        await stop.CancelAsync();
        await run.WaitAsync(s_wait);

        // Assert
        var errors = observer.Errors.Select(e => e.Message).ToList();
        Assert.Contains(errors, m => m.Contains("'orders/bad'", StringComparison.Ordinal) && m.Contains("not JSON", StringComparison.Ordinal));
        Assert.Contains(errors, m => m.Contains("'orders/good'", StringComparison.Ordinal) && m.Contains("99999", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunAsync_CompactedWhileBehind_RerangesWithNothingLost()
    {
        // Arrange: the source ranges, then (before its watch opens) the registry moves on and is compacted past the
        // revision the watch will ask for, so etcd must answer with compact_revision.
        await using var etcd = await EtcdServer.StartAsync();
        await etcd.PutAsync("orders/a", Go("127.0.0.1:7001"));
        await etcd.PutAsync("orders/b", Go("127.0.0.1:7002"));
        await using var harness = EtcdHarness.Create(etcd);
        var source = CreateSource(harness, "orders");
        var hooked = 0;
        source.BeforeWatch = async (_, _) =>
        {
            if (Interlocked.Increment(ref hooked) != 1)
            {
                return;
            }

            await etcd.DeleteAsync("orders/a");
            await etcd.PutAsync("orders/c", Go("127.0.0.1:7003"));
            await etcd.PutAsync("orders/b", Go("127.0.0.1:7002", """{"zone":"z2"}"""));
            var revision = await etcd.PutAsync("unrelated", "x");
            await etcd.CompactAsync(revision);
        };
        var observer = new RecordingObserver();
        using var stop = new CancellationTokenSource();

        // Act
        var run = source.RunAsync(observer, stop.Token);
        await Eventually.TrueAsync(() => observer.Addresses.SequenceEqual(["127.0.0.1:7002", "127.0.0.1:7003"]) && observer.Current!.Any(e => e.Zone == "z2"),
            s_wait, "a re-range after compaction");
        await etcd.PutAsync("orders/d", Go("127.0.0.1:7004"));
        await Eventually.TrueAsync(() => observer.Addresses.Count == 3, s_wait, "the watch after the re-range");
        await stop.CancelAsync();
        await run.WaitAsync(s_wait);

        // Assert: ranged twice (second time cleanly replacing the set), and no error was reported for a compaction.
        Assert.True(hooked >= 2);
        Assert.Equal(["127.0.0.1:7001", "127.0.0.1:7002"], observer.Sets.First().Select(e => e.Address).Order());
        Assert.Empty(observer.Errors);
        Assert.Contains(harness.Logs.Entries, e => e.EventId.Name == "EtcdCompacted");
    }

    [Fact]
    public async Task RunAsync_EtcdRestartMidWatch_KeepsLastSetAndLosesNothing()
    {
        // Arrange
        await using var etcd = await EtcdServer.StartAsync();
        await etcd.PutAsync("orders/a", Go("127.0.0.1:7001"));
        await using var harness = EtcdHarness.Create(etcd);
        Assert.Equal(1, (await harness.Resolver.GetEndpointsAsync("orders", "etcd")).Count);
        using var tracker = new SetTracker(harness.Resolver, "orders");

        // Act: crash etcd; the last good set keeps serving while it is down.
        await etcd.KillAsync();
        await Eventually.TrueAsync(() => tracker.Errors > 0, s_wait, "the cut watch is reported");
        var duringOutage = await harness.Resolver.GetEndpointsAsync("orders", "etcd");
        await etcd.RestartAsync();
        await etcd.PutAsync("orders/b", Go("127.0.0.1:7002"));
        await etcd.DeleteAsync("orders/a");
        await etcd.PutAsync("orders/c", Go("127.0.0.1:7003"));

        // Assert
        Assert.Equal("127.0.0.1:7001", Assert.Single(duringOutage.Endpoints).Address);
        await Eventually.TrueAsync(() => tracker.Addresses.SequenceEqual(["127.0.0.1:7002", "127.0.0.1:7003"]), s_wait, "the changes made after the restart");
    }

    [Fact]
    public async Task RunAsync_DeleteOpValue_RemovesInstanceAsGoWatcherDoes()
    {
        await using var etcd = await EtcdServer.StartAsync();
        await etcd.PutAsync("orders/a", Go("127.0.0.1:7001"));
        await etcd.PutAsync("orders/b", Go("127.0.0.1:7002"));
        await using var harness = EtcdHarness.Create(etcd);
        Assert.Equal(2, (await harness.Resolver.GetEndpointsAsync("orders", "etcd")).Count);
        using var tracker = new SetTracker(harness.Resolver, "orders");

        await etcd.PutAsync("orders/a", """{"Op":1,"Addr":"127.0.0.1:7001","Metadata":null}""");

        await Eventually.TrueAsync(() => tracker.Addresses.SequenceEqual(["127.0.0.1:7002"]), s_wait, "Op 1 removes the instance");
    }

    [Fact]
    public async Task RunAsync_EtcdUnreachable_ReportsErrorNamingEtcdAndNeverThrows()
    {
        await using var etcd = await EtcdServer.StartAsync();
        var url = etcd.ClientUrl;
        await etcd.KillAsync();
        await using var harness = EtcdHarness.Create(etcd);
        var source = CreateSource(harness, "orders");
        var observer = new RecordingObserver();
        using var stop = new CancellationTokenSource();

        var run = source.RunAsync(observer, stop.Token);
        await Eventually.TrueAsync(() => observer.Errors.Count >= 2, s_wait, "errors reported with backoff");
        await stop.CancelAsync();
        await run.WaitAsync(s_wait);

        Assert.All(observer.Errors, e => Assert.Contains(url, e.Message, StringComparison.Ordinal));
        Assert.IsType<EtcdException>(observer.Errors.First());
        Assert.Null(observer.Current);
    }
}
