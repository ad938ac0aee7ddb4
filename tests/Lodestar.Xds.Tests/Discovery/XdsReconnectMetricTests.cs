using System.Diagnostics.Metrics;
using Lodestar.Discovery;
using Lodestar.Testing;
using Lodestar.Testing.Xds;
using Lodestar.Xds.Resources;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;

namespace Lodestar.Xds.Tests.Discovery;

/// <summary>The reconnect metric through the real wiring: <c>AddLodestar().AddXds()</c>, <see cref="IEndpointResolver"/>, a meter listener.</summary>
public sealed class XdsReconnectMetricTests
{
    [Fact]
    public async Task Watch_AdsStreamResetTwice_CountsTwoReconnectsForTheCluster()
    {
        // Arrange
        await using var server = await FakeXdsServer.StartAsync();
        server.SetResource(XdsTypeUrls.Cluster, "metered", EdsCluster("metered"));
        server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "metered", Assignment("metered", ("10.0.0.1", 8080)));
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<TimeProvider>(clock);
        services.AddLodestar(o => o.ResolutionTimeout = TimeSpan.FromSeconds(10)).AddXds(o => o.BootstrapJson = server.Bootstrap());
        await using var provider = services.BuildServiceProvider();
        using var reconnects = new ReconnectCounter(provider.GetRequiredService<IMeterFactory>());
        var resolver = provider.GetRequiredService<IEndpointResolver>();
        Assert.Single((await resolver.GetEndpointsAsync("metered", "xds")).Endpoints);
        Assert.Equal(0, reconnects.Total);

        // Act: the server cuts the stream twice; the client opens a new one after each backoff delay (at most 800 ms).
        for (var reset = 1; reset <= 2; reset++)
        {
            server.ResetStreams();
            var expected = reset + 1;
            await Eventually.TrueAsync(() =>
            {
                clock.Advance(TimeSpan.FromSeconds(1));
                return server.StreamsOpened >= expected;
            }, TimeSpan.FromSeconds(20), $"the client reopens the stream after reset {reset}");
            await Eventually.TrueAsync(() => reconnects.Total == reset, TimeSpan.FromSeconds(10), $"reset {reset} is counted");
        }

        // Assert: one count per reopened stream, for the cluster's service and the xds source; the endpoints stay.
        Assert.Equal(2, reconnects.Total);
        Assert.Equal(2, server.StreamsOpened - 1);
        Assert.Single((await resolver.GetEndpointsAsync("metered", "xds")).Endpoints);
    }

    /// <summary>Sums <c>lodestar.discovery.reconnects</c> for service <c>metered</c> and source <c>xds</c> from one provider's meters.</summary>
    private sealed class ReconnectCounter : IDisposable
    {
        private readonly MeterListener _listener = new();
        private long _total;

        public ReconnectCounter(IMeterFactory meters)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Scope == meters && instrument.Name == "lodestar.discovery.reconnects")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                string? service = null, source = null;
                foreach (var tag in tags)
                {
                    service = tag.Key == "lodestar.service" ? tag.Value as string : service;
                    source = tag.Key == "lodestar.source" ? tag.Value as string : source;
                }

                if (service == "metered" && source == "xds")
                {
                    Interlocked.Add(ref _total, value);
                }
            });
            _listener.Start();
        }

        public long Total => Interlocked.Read(ref _total);

        public void Dispose() => _listener.Dispose();
    }
}
