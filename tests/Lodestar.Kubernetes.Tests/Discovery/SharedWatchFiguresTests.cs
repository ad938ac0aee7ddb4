using System.Globalization;
using Lodestar.Kubernetes.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Kubernetes;
using Xunit.Abstractions;

namespace Lodestar.Kubernetes.Tests.Discovery;

/// <summary>
/// The cost of following 1, 10 and 100 services of one namespace, shared and not: API-server requests until every
/// service is listed and watched, open watches, and memory retained per service. Prints the table the Kubernetes page
/// quotes (run with <c>--logger "console;verbosity=detailed"</c>) and asserts what the sharing is for.
/// </summary>
public sealed class SharedWatchFiguresTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(60);
    private FakeKubernetesApiServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await FakeKubernetesApiServer.StartAsync();
        for (var i = 0; i < 100; i++)
        {
            // Each service has one slice of 10 endpoints, as a small deployment's.
            _server.Upsert(FakeEndpointSlice.Create("shop", $"svc-{i}-a", "svc-" + i, 8080,
                Enumerable.Range(1, 10).Select(e => FakeEndpoint.ReadyAt($"10.{i}.0.{e}")).ToArray()));
        }
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task RunAsync_OneTenAndHundredServices_SharedCostsOneWatchAndLessMemory()
    {
        // A first round pays for JIT compilation and first-use caches in both modes; it is not reported.
        await MeasureAsync(1, shared: true);
        await MeasureAsync(1, shared: false);
        var rows = new List<Row>();
        foreach (var services in new[] { 1, 10, 100 })
        {
            foreach (var shared in new[] { true, false })
            {
                rows.Add(await MeasureAsync(services, shared));
            }
        }

        output.WriteLine("| Services | Shared | LIST requests | WATCH requests | Open watches | Retained per service |");
        output.WriteLine("| ---: | --- | ---: | ---: | ---: | ---: |");
        foreach (var row in rows)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {row.Services} | {(row.Shared ? "yes" : "no")} | {row.Lists} | {row.Watches} | {row.OpenWatches} | {row.RetainedBytes / row.Services / 1024.0:0.0} KiB |"));
        }

        Assert.All(rows, r => Assert.Equal(r.Shared ? 1 : r.Services, r.OpenWatches));
        Assert.All(rows.Where(static r => !r.Shared), r => Assert.Equal(r.Services, r.Lists));
        var shared100 = rows.Single(static r => r.Shared && r.Services == 100);
        var alone100 = rows.Single(static r => !r.Shared && r.Services == 100);
        Assert.True(shared100.Lists < alone100.Lists, $"shared: {shared100.Lists} lists; alone: {alone100.Lists}");
        Assert.True(shared100.RetainedBytes < alone100.RetainedBytes, $"shared retains {shared100.RetainedBytes} bytes; alone {alone100.RetainedBytes}");
    }

    /// <summary>Starts <paramref name="services"/> sources at once and measures once every one has its endpoints on an open watch.</summary>
    private async Task<Row> MeasureAsync(int services, bool shared)
    {
        var (lists, watches) = (Count("LIST"), Count("WATCH"));
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var harness = await SourceHarness.StartAsync(_server, "svc-0", o =>
        {
            o.ShareNamespaceWatches = shared;

            // Lists are not held back by the client-side limiter (5 per second, as client-go's), so the figures count
            // requests, not the limiter's pacing.
            o.Qps = 10_000;
            o.Burst = 10_000;
        });
        try
        {
            var observers = new RecordingObserver[services];
            observers[0] = harness.Observer;
            for (var i = 1; i < services; i++)
            {
                observers[i] = harness.Follow("svc-" + i);
            }

            var expected = shared ? 1 : services;
            await Eventually.TrueAsync(() => observers.All(static o => o.Addresses.Length == 10) && _server.OpenWatches == expected, s_wait,
                "every service listed and watched");
            var retained = GC.GetTotalMemory(forceFullCollection: true) - before;
            GC.KeepAlive(observers);
            return new Row(services, shared, Count("LIST") - lists, Count("WATCH") - watches, _server.OpenWatches, retained);
        }
        finally
        {
            await harness.DisposeAsync();
            await Eventually.TrueAsync(() => _server.OpenWatches == 0, s_wait, "every watch closed");
        }
    }

    private int Count(string prefix) => _server.Requests.Count(r => r.StartsWith(prefix, StringComparison.Ordinal));

    private sealed record Row(int Services, bool Shared, int Lists, int Watches, int OpenWatches, long RetainedBytes);
}
