using System.Net;
using Lodestar.Dns.Discovery.Internal;
using Lodestar.Dns.Internal;
using Lodestar.Dns.Resolver;
using Lodestar.Testing;
using Lodestar.Testing.Dns;
using Microsoft.Extensions.Logging.Abstractions;

namespace Lodestar.Dns.Tests.Discovery;

/// <summary>
/// The source's schedule on a recording clock: the loop's timers (refresh and backoff) run on it, while the resolver's
/// per-attempt timeouts run on the system clock against a scripted server on loopback, so every timer the test sees is
/// one the loop armed.
/// </summary>
public sealed class DnsEndpointSourceScheduleTests : IAsyncLifetime
{
    private readonly HostileDnsServer _server = HostileDnsServer.Start();
    private readonly RecordingTimeProvider _clock = new();
    private readonly RecordingObserver _observer = new();
    private readonly CancellationTokenSource _stop = new();
    private Task _loop = Task.CompletedTask;

    public DnsEndpointSourceScheduleTests()
    {
        // The server knows no AAAA record; its SOA makes that "no data" last longer than any A TTL used here.
        _server.NegativeTtl = 100_000;
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop.WaitAsync(TimeSpan.FromSeconds(10));
        _stop.Dispose();
        await _server.DisposeAsync();
    }

    [Theory]
    [InlineData(7u, 7)]
    [InlineData(0u, 1)]
    [InlineData(86_400u, 300)]
    public async Task RunAsync_AnswerTtl_RefreshesAtTtlClampedToMinAndMaxTtl(uint ttl, int expectedSeconds)
    {
        _server.Ttl = ttl;
        Start();

        Assert.Equal("127.0.0.2:80", Assert.Single(await _observer.NextSetAsync()).Address);
        Assert.Equal(TimeSpan.FromSeconds(expectedSeconds), await _clock.NextFiniteTimerAsync());
        var queries = _server.UdpQueries;

        _clock.Advance(TimeSpan.FromSeconds(expectedSeconds));

        await _observer.NextSetAsync();
        Assert.Equal(TimeSpan.FromSeconds(expectedSeconds), await _clock.NextFiniteTimerAsync());
        Assert.Equal(queries + 2, _server.UdpQueries); // one A and one AAAA question per refresh
        Assert.Empty(_observer.Errors);
    }

    [Fact]
    public async Task RunAsync_NegativeAnswerWithSoa_RefreshesAtSoaTtl()
    {
        _server.UdpFault = HostileDnsFault.NameError;
        _server.NegativeTtl = 45;
        Start();

        Assert.Empty(await _observer.NextSetAsync());

        // RFC 2308 §5: min(SOA TTL, SOA MINIMUM), not NegativeTtl (30 s) nor MinTtl.
        Assert.Equal(TimeSpan.FromSeconds(45), await _clock.NextFiniteTimerAsync());
    }

    [Fact]
    public async Task RunAsync_NegativeAnswerWithoutSoa_RefreshesAtNegativeTtl()
    {
        _server.UdpFault = HostileDnsFault.NameError;
        _server.NegativeTtl = null;
        Start(o => o.NegativeTtl = TimeSpan.FromSeconds(20));

        Assert.Empty(await _observer.NextSetAsync());

        Assert.Equal(TimeSpan.FromSeconds(20), await _clock.NextFiniteTimerAsync());
    }

    [Fact]
    public async Task RunAsync_RepeatedFailures_BacksOffOnClientGoScheduleThenRefreshesAtTtl()
    {
        // Jitter draws 1.0, so each delay is its ceiling: 800 ms doubling up to 30 s (client-go's reflector defaults).
        _server.UdpFault = HostileDnsFault.ServerFailure;
        _server.Ttl = 60;
        Start(random: () => 1.0);
        var schedule = new List<TimeSpan>();

        for (var failure = 0; failure < 8; failure++)
        {
            var error = await _observer.NextErrorAsync();
            Assert.Contains(_server.Server, error.Message, StringComparison.Ordinal);
            Assert.Contains("ServerFailure", error.Message, StringComparison.Ordinal);
            var delay = await _clock.NextFiniteTimerAsync();
            schedule.Add(delay);
            if (failure == 7)
            {
                _server.UdpFault = HostileDnsFault.None;
            }

            _clock.Advance(delay);
        }

        Assert.Equal(
            new[] { 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30, 30 }.Select(TimeSpan.FromSeconds),
            schedule);
        Assert.Equal("127.0.0.2:80", Assert.Single(await _observer.NextSetAsync()).Address);
        Assert.Equal(TimeSpan.FromSeconds(60), await _clock.NextFiniteTimerAsync());
    }

    [Fact]
    public async Task RunAsync_ConfiguredBackoff_UsesItsDelays()
    {
        _server.UdpFault = HostileDnsFault.Refused;
        Start(o =>
        {
            o.Backoff.InitialDelay = TimeSpan.FromSeconds(2);
            o.Backoff.MaxDelay = TimeSpan.FromSeconds(5);
        }, random: () => 0.5);
        var schedule = new List<TimeSpan>();

        for (var failure = 0; failure < 4; failure++)
        {
            await _observer.NextErrorAsync();
            var delay = await _clock.NextFiniteTimerAsync();
            schedule.Add(delay);
            _clock.Advance(delay);
        }

        // Half of each ceiling: 2, 4, 5 (capped), 5 s.
        Assert.Equal(new[] { 1.0, 2.0, 2.5, 2.5 }.Select(TimeSpan.FromSeconds), schedule);
    }

    [Fact]
    public async Task RunAsync_FailureAfterGoodSet_ReportsItKeepsTheSetAndRecovers()
    {
        _server.Ttl = 10;
        Start(random: () => 1.0);
        Assert.Equal("127.0.0.2:80", Assert.Single(await _observer.NextSetAsync()).Address);
        var refresh = await _clock.NextFiniteTimerAsync();

        _server.UdpFault = HostileDnsFault.ServerFailure;
        _clock.Advance(refresh);
        var error = await _observer.NextErrorAsync();
        var delay = await _clock.NextFiniteTimerAsync();

        Assert.IsType<DnsResolutionException>(error);
        Assert.Equal(TimeSpan.FromMilliseconds(800), delay);
        Assert.Single(_observer.Sets);

        _server.UdpFault = HostileDnsFault.None;
        _server.Addresses = [IPAddress.Parse("127.0.0.3")];
        _clock.Advance(delay);

        Assert.Equal("127.0.0.3:80", Assert.Single(await _observer.NextSetAsync()).Address);
        Assert.Equal(TimeSpan.FromSeconds(10), await _clock.NextFiniteTimerAsync());
    }

    private void Start(Action<DnsSourceOptions>? configure = null, Func<double>? random = null)
    {
        var options = new DnsSourceOptions();
        configure?.Invoke(options);
        Assert.True(DnsServiceQuery.TryParse("web.lodestar.test", options, out var query));
        var resolver = TestResolvers.Create([_server.EndPoint], timeout: TimeSpan.FromSeconds(5));
        var source = new DnsEndpointSource("web.lodestar.test", query, resolver, options, _clock, NullLogger.Instance, random);
        _loop = Task.Run(() => source.RunAsync(_observer, _stop.Token));
    }
}
