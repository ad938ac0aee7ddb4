using System.Diagnostics.Metrics;
using Lodestar.Discovery;
using Lodestar.Testing;
using Lodestar.Testing.Dns;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Dns.Tests.Discovery;

/// <summary>The reconnect metric through the real wiring: <c>AddLodestar().AddDns()</c>, <see cref="IEndpointResolver"/>, a meter listener.</summary>
public sealed class DnsReconnectMetricTests
{
    // The loop's timers are told apart by their due time: resolver attempts time out after 30 s, backoff delays are at
    // most 4 s, and a refresh comes after the 60 s TTL.
    private static readonly TimeSpan s_attemptTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan s_ttl = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Watch_ServerFailsThreeTimesThenRefreshes_ReconnectsCountsExactlyTheFailures()
    {
        // Arrange
        await using var server = HostileDnsServer.Start();
        server.UdpFault = HostileDnsFault.ServerFailure;
        server.Ttl = (uint)s_ttl.TotalSeconds;
        server.NegativeTtl = 3600;
        var clock = new RecordingTimeProvider();
        await using var services = DnsServices.Build(server.Server, o =>
        {
            o.Timeout = s_attemptTimeout;
            o.Attempts = 1;
            o.Backoff.InitialDelay = TimeSpan.FromSeconds(1);
            o.Backoff.MaxDelay = TimeSpan.FromSeconds(4);
        }, clock: clock);
        using var reconnects = new DnsCounter(services.GetRequiredService<IMeterFactory>(), "lodestar.discovery.reconnects");
        using var errors = new DnsCounter(services.GetRequiredService<IMeterFactory>(), "lodestar.discovery.errors");
        var resolver = services.GetRequiredService<IEndpointResolver>();
        var sets = 0;
        using var watch = resolver.Watch("web.lodestar.test", "dns", _ => Interlocked.Increment(ref sets));

        // Act: three failed resolutions, each followed by its backoff delay; the fourth try succeeds.
        for (var failure = 1; failure <= 3; failure++)
        {
            var delay = await NextLoopTimerAsync(clock);
            Assert.True(delay < s_ttl, $"failure {failure} is followed by a backoff delay, not a refresh ({delay})");
            Assert.Equal(failure, errors.Total);
            if (failure == 3)
            {
                server.UdpFault = HostileDnsFault.None;
            }

            clock.Advance(delay);
        }

        Assert.Equal(s_ttl, await NextLoopTimerAsync(clock));
        Assert.Equal(1, Volatile.Read(ref sets));

        // Five scheduled refreshes at the TTL.
        for (var refresh = 0; refresh < 5; refresh++)
        {
            clock.Advance(s_ttl);
            Assert.Equal(s_ttl, await NextLoopTimerAsync(clock));
        }

        // Assert
        Assert.Equal(3, reconnects.Total);
        Assert.Equal(3, errors.Total);
        Assert.True(server.UdpQueries >= 2 * (4 + 5), $"every refresh asked the server ({server.UdpQueries} queries)");
        var set = await resolver.GetEndpointsAsync("web.lodestar.test", "dns");
        Assert.Equal("127.0.0.2:80", Assert.Single(set.Endpoints).Address);
    }

    /// <summary>The next timer the discovery loop arms, skipping the resolver's per-attempt timeouts.</summary>
    private static async Task<TimeSpan> NextLoopTimerAsync(RecordingTimeProvider clock)
    {
        while (true)
        {
            var due = await clock.NextFiniteTimerAsync();
            if (due != s_attemptTimeout)
            {
                return due;
            }
        }
    }

    /// <summary>Sums one counter of the DNS source from one service provider's meters.</summary>
    private sealed class DnsCounter : IDisposable
    {
        private readonly MeterListener _listener = new();
        private long _total;

        public DnsCounter(IMeterFactory meters, string name)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Scope == meters && instrument.Name == name)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag.Key == "lodestar.source" && Equals(tag.Value, "dns"))
                    {
                        Interlocked.Add(ref _total, value);
                    }
                }
            });
            _listener.Start();
        }

        public long Total => Interlocked.Read(ref _total);

        public void Dispose() => _listener.Dispose();
    }
}
