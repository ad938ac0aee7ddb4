using System.Diagnostics.Metrics;
using Lodestar.Etcd.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Etcd;
using Lodestar.Testing.Net;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Etcd.Tests.Discovery;

/// <summary>
/// A real etcd behind a <see cref="CuttableTcpProxy"/>, through the real DI wiring: watches that go silent, and watches
/// whose connection is cut, with the reconnect metric read as an exporter would.
/// </summary>
public sealed class EtcdWatchInterruptionTests
{
    /// <summary>etcd's progress notifications every 200 ms (its default is 10 minutes).</summary>
    private const string FastProgress = "--experimental-watch-progress-notify-interval=200ms";

    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private static string Go(int port) => $"{{\"Op\":0,\"Addr\":\"127.0.0.1:{port}\",\"Metadata\":null}}";

    private static int Count(EtcdHarness harness, string eventName) => harness.Logs.Entries.Count(e => e.EventId.Name == eventName);

    [Fact]
    public async Task Watch_QuietButGettingProgressNotifications_StaysOpenPastTheTimeout()
    {
        // Arrange
        await using var etcd = await EtcdServer.StartAsync(FastProgress);
        await etcd.PutAsync("orders/a", Go(7001));
        // The timeout is 10 intervals: on a loaded machine the watch's opening (which the timeout also covers) can take
        // more than a second.
        await using var harness = EtcdHarness.Create(etcd, o => o.WatchProgressTimeout = TimeSpan.FromSeconds(2));
        using var tracker = new SetTracker(harness.Resolver, "orders");
        await Eventually.TrueAsync(() => tracker.Addresses.Count == 1, s_wait, "the first set");

        // Act: fifteen notifications take over 3 s, one and a half times the timeout, with no event at all.
        await Eventually.TrueAsync(() => Count(harness, "EtcdWatchProgress") >= 15, s_wait, "progress notifications arrive");

        // Assert: one watch all along.
        Assert.True(tracker.Errors == 0, $"{tracker.Errors} error(s), the last: {tracker.LastError?.Message}");
        Assert.Equal(1, Count(harness, "EtcdWatching"));
        Assert.Equal(0, Count(harness, "DiscoveryStalled"));
    }

    [Fact]
    public async Task Watch_ProxyStallsTheStream_StallReportedNamingMemberThenResumedWithNothingLost()
    {
        // Arrange: the client reaches etcd only through the proxy.
        await using var etcd = await EtcdServer.StartAsync(FastProgress);
        await etcd.PutAsync("orders/a", Go(7001));
        await using var proxy = CuttableTcpProxy.Start(etcd.ClientUrl);
        await using var harness = EtcdHarness.Create(proxy.Url(), o => o.WatchProgressTimeout = TimeSpan.FromSeconds(1));
        using var tracker = new SetTracker(harness.Resolver, "orders");
        await Eventually.TrueAsync(() => tracker.Addresses.Count == 1 && Count(harness, "EtcdWatchProgress") >= 2, s_wait, "the watch is up");

        // Act: the proxy stops forwarding without closing anything; a change is made meanwhile.
        proxy.Stall();
        await etcd.PutAsync("orders/b", Go(7002));
        await Eventually.TrueAsync(() => tracker.Errors > 0, s_wait, "the silent stream is noticed");
        var error = tracker.LastError!;
        var setDuringStall = tracker.Addresses;
        proxy.Resume();

        // Assert
        await Eventually.TrueAsync(() => tracker.Addresses.SequenceEqual(["127.0.0.1:7001", "127.0.0.1:7002"]), s_wait, "the change made during the stall");
        Assert.Equal(["127.0.0.1:7001"], setDuringStall);
        Assert.Contains(proxy.Url(), error.Message, StringComparison.Ordinal);
        Assert.Contains("prefix 'orders/'", error.Message, StringComparison.Ordinal);
        Assert.Contains("WatchProgressTimeout", error.Message, StringComparison.Ordinal);
        Assert.True(Count(harness, "DiscoveryStalled") >= 1);
    }

    [Fact]
    public async Task Watch_StreamCutThreeTimes_MetricCountsExactlyThreeReconnectsAndNoEventIsLost()
    {
        // Arrange: AddLodestar().AddEtcd() as an application wires it, etcd behind the proxy.
        const int Cuts = 3;
        await using var etcd = await EtcdServer.StartAsync();
        await etcd.PutAsync("orders/a", Go(7000));
        await using var proxy = CuttableTcpProxy.Start(etcd.ClientUrl);
        await using var harness = EtcdHarness.Create(proxy.Url());
        var meters = harness.Services.GetRequiredService<IMeterFactory>();
        long reconnects = 0;
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, meters) && instrument.Name == "lodestar.discovery.reconnects")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            var service = false;
            var source = false;
            foreach (var tag in tags)
            {
                service |= tag is { Key: "lodestar.service", Value: "orders" };
                source |= tag is { Key: "lodestar.source", Value: "etcd" };
            }

            if (service && source)
            {
                Interlocked.Add(ref reconnects, value);
            }
        });
        listener.Start();
        using var tracker = new SetTracker(harness.Resolver, "orders");
        var expected = new List<string> { "127.0.0.1:7000" };

        // Act: each round, the watch goes silent, a key is written, then every connection is reset; the key must
        // arrive through the next watch, resumed from the last revision the client saw.
        for (var round = 0; round < Cuts; round++)
        {
            await Eventually.TrueAsync(() => Count(harness, "EtcdWatching") == round + 1, s_wait, $"watch {round + 1} is open");
            proxy.Stall();
            await etcd.PutAsync($"orders/k{round}", Go(7001 + round));
            Assert.True(proxy.CutAll() >= 1);
            expected.Add($"127.0.0.1:{7001 + round}");
            await Eventually.TrueAsync(() => tracker.Addresses.SequenceEqual(expected.Order(StringComparer.Ordinal)), s_wait, $"the key written in round {round + 1}");
        }

        // Assert
        Assert.Equal(Cuts, Interlocked.Read(ref reconnects));
        Assert.Equal(Cuts + 1, Count(harness, "EtcdWatching"));
        Assert.Equal(0, Count(harness, "EtcdRanged") - 1);
        Assert.Equal(Cuts, tracker.Errors);
    }
}
