using System.Diagnostics.Metrics;
using Lodestar.Discovery;
using Lodestar.Kubernetes.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Kubernetes;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Kubernetes.Tests.DependencyInjection;

/// <summary>The reconnect metric as an application sees it: real DI wiring, the endpoint watcher, a MeterListener.</summary>
public sealed class ReconnectMetricTests : IAsyncLifetime
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);
    private readonly TempDirectory _directory = new();
    private FakeKubernetesApiServer _server = null!;

    public async Task InitializeAsync() => _server = await FakeKubernetesApiServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _directory.Dispose();
    }

    [Fact]
    public async Task Watch_StreamCutThreeTimes_RecordsExactlyThreeReconnects()
    {
        const int Cuts = 3;
        _server.Upsert(FakeEndpointSlice.Create("shop", "inventory-a", "inventory", 8080, FakeEndpoint.ReadyAt("10.0.0.1")));
        var services = new ServiceCollection().AddLogging();
        services.AddLodestar().AddKubernetes(o =>
        {
            o.KubeconfigPath = _server.WriteKubeconfig(_directory.Path);
            o.Namespace = "shop";
        });
        await using var provider = services.BuildServiceProvider();
        var meters = provider.GetRequiredService<IMeterFactory>();
        long reconnects = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "lodestar.discovery.reconnects" && ReferenceEquals(instrument.Meter.Scope, meters))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            var tagged = tags.ToArray();
            if (tagged.Contains(new("lodestar.service", "inventory")) && tagged.Contains(new("lodestar.source", "kubernetes")))
            {
                Interlocked.Add(ref reconnects, value);
            }
        });
        listener.Start();
        var resolver = provider.GetRequiredService<IEndpointResolver>();
        using var watch = resolver.Watch("inventory", "kubernetes", static _ => { });
        Assert.Equal(1, (await resolver.GetEndpointsAsync("inventory", "kubernetes")).Count);

        for (var cut = 1; cut <= Cuts; cut++)
        {
            await Eventually.TrueAsync(() => _server.OpenWatches == 1 && WatchCount() == cut, s_wait, "the source watches");
            var watches = WatchCount();

            // An event proves the stream is read before it is cut, so the cut counts as a stream that made progress.
            _server.Upsert(FakeEndpointSlice.Create("shop", "inventory-a", "inventory", 8080, FakeEndpoint.ReadyAt("10.0.0." + (cut + 1))));
            await Eventually.TrueAsync(async () => (await resolver.GetEndpointsAsync("inventory", "kubernetes")).Endpoints[0].Address == $"10.0.0.{cut + 1}:8080",
                s_wait, "the event is applied");
            _server.EndWatches(abort: true);
            await Eventually.TrueAsync(() => WatchCount() == watches + 1 && _server.OpenWatches == 1, s_wait, "the source watches again after the cut");
        }

        Assert.Equal(Cuts + 1, WatchCount());
        Assert.Equal(Cuts, Interlocked.Read(ref reconnects));
        Assert.Equal(1, _server.Requests.Count(r => r.StartsWith("LIST", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Watch_SharedStreamCut_EachServiceRecordsOneReconnectOnOneWatch()
    {
        string[] names = ["inventory", "pricing", "search"];
        for (var i = 0; i < names.Length; i++)
        {
            _server.Upsert(FakeEndpointSlice.Create("shop", names[i] + "-a", names[i], 8080, FakeEndpoint.ReadyAt("10.0.0." + (i + 1))));
        }

        var services = new ServiceCollection().AddLogging();
        services.AddLodestar().AddKubernetes(o =>
        {
            o.KubeconfigPath = _server.WriteKubeconfig(_directory.Path);
            o.Namespace = "shop";
        });
        await using var provider = services.BuildServiceProvider();
        var meters = provider.GetRequiredService<IMeterFactory>();
        var reconnects = new System.Collections.Concurrent.ConcurrentDictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "lodestar.discovery.reconnects" && ReferenceEquals(instrument.Meter.Scope, meters))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "lodestar.service")
                {
                    reconnects.AddOrUpdate((string)tag.Value!, value, (_, old) => old + value);
                }
            }
        });
        listener.Start();
        var resolver = provider.GetRequiredService<IEndpointResolver>();
        var watches = names.Select(n => resolver.Watch(n, "kubernetes", static _ => { })).ToList();
        try
        {
            foreach (var name in names)
            {
                Assert.Equal(1, (await resolver.GetEndpointsAsync(name, "kubernetes")).Count);
            }

            await Eventually.TrueAsync(() => _server.OpenWatches == 1, s_wait, "one watch serves the three services");
            var before = WatchCount();

            // An event proves the stream is read before it is cut, so the cut counts as a stream that made progress.
            _server.Upsert(FakeEndpointSlice.Create("shop", "pricing-a", "pricing", 8080, FakeEndpoint.ReadyAt("10.0.0.9")));
            await Eventually.TrueAsync(async () => (await resolver.GetEndpointsAsync("pricing", "kubernetes")).Endpoints[0].Address == "10.0.0.9:8080",
                s_wait, "the event is applied");
            _server.EndWatches(abort: true);

            await Eventually.TrueAsync(() => WatchCount() == before + 1 && _server.OpenWatches == 1, s_wait, "one new watch for all");
            await Eventually.TrueAsync(() => names.All(n => reconnects.GetValueOrDefault(n) == 1), s_wait, "each service records its reconnect");
            Assert.All(names, n => Assert.Equal(1, reconnects.GetValueOrDefault(n)));
        }
        finally
        {
            watches.ForEach(static w => w.Dispose());
        }
    }

    private int WatchCount() => _server.Requests.Count(r => r.StartsWith("WATCH", StringComparison.Ordinal));
}
