using System.Net;
using Lodestar.Discovery;
using Lodestar.Dns.Discovery.Internal;
using Lodestar.Dns.Internal;
using Lodestar.Dns.Resolver;
using Lodestar.Testing;
using Lodestar.Testing.Dns;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Lodestar.Dns.Tests.Hostile;

/// <summary>The DNS source against a hostile server: clear errors, the last good set in force, recovery.</summary>
public sealed class HostileSourceTests : IAsyncLifetime
{
    private readonly HostileDnsServer _server = HostileDnsServer.Start();

    public Task InitializeAsync()
    {
        _server.NegativeTtl = 3600;
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Theory]
    [InlineData(HostileDnsFault.PointerLoop, "a pointer loop")]
    [InlineData(HostileDnsFault.RecordOverrun, "claims 204 bytes of data")]
    [InlineData(HostileDnsFault.WrongQuestion, "It answers another question")]
    [InlineData(HostileDnsFault.TruncatedHeader, "shorter than its 12-byte header")]
    public async Task RunAsync_ServerTurnsHostile_ReportsServerAndProblemKeepsLastSetAndRecovers(HostileDnsFault fault, string problem)
    {
        // Arrange: a good set first.
        var clock = new RecordingTimeProvider();
        var observer = new RecordingObserver();
        _server.Ttl = 10;
        using var stop = new CancellationTokenSource();
        var loop = Run(clock, observer, stop.Token);
        Assert.Equal("127.0.0.2:80", Assert.Single(await observer.NextSetAsync()).Address);
        var refresh = await clock.NextFiniteTimerAsync();

        // Act: the refresh meets the hostile server.
        _server.UdpFault = fault;
        clock.Advance(refresh);
        var error = await observer.NextErrorAsync();
        var backoff = await clock.NextFiniteTimerAsync();

        // Assert: the error names the server and the problem; nothing new was published.
        Assert.IsType<DnsResolutionException>(error);
        Assert.Contains($"DNS server {_server.Server} sent a malformed answer to A web.lodestar.test", error.Message, StringComparison.Ordinal);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
        Assert.Single(observer.Sets);
        Assert.True(backoff < refresh, "a failure is retried after the backoff, not the TTL");

        // The server behaves again, with another address: the retry publishes it and refreshes at the TTL again.
        _server.UdpFault = HostileDnsFault.None;
        _server.Addresses = [IPAddress.Parse("127.0.0.3")];
        clock.Advance(backoff);
        Assert.Equal("127.0.0.3:80", Assert.Single(await observer.NextSetAsync()).Address);
        Assert.Equal(TimeSpan.FromSeconds(10), await clock.NextFiniteTimerAsync());
        await stop.CancelAsync();
        await loop.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task RunAsync_AaaaAnswerMalformed_PublishesTheAAddressesAndReportsTheAaaaProblem()
    {
        var clock = new RecordingTimeProvider();
        var observer = new RecordingObserver();
        _server.Addresses = [IPAddress.Parse("127.0.0.2"), IPAddress.Parse("fd00::2")];
        _server.Ttl = 300;
        _server.UdpFault = HostileDnsFault.RecordOverrun;
        _server.FaultOnlyForType = 28;
        using var stop = new CancellationTokenSource();
        var loop = Run(clock, observer, stop.Token);

        var error = await observer.NextErrorAsync();
        var set = await observer.NextSetAsync();

        Assert.Equal("127.0.0.2:80", Assert.Single(set).Address);
        Assert.Contains("Using the 1 A address(es) of web.lodestar.test for service 'web.lodestar.test' without its AAAA addresses", error.Message, StringComparison.Ordinal);
        Assert.Contains($"DNS server {_server.Server} sent a malformed answer to AAAA web.lodestar.test", error.Message, StringComparison.Ordinal);
        // The AAAA question is asked again within NegativeTtl (30 s), not after the A record's 300 s.
        Assert.Equal(TimeSpan.FromSeconds(30), await clock.NextFiniteTimerAsync());
        await stop.CancelAsync();
        await loop.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task GetEndpointsAsync_OnlyMalformedAnswers_FailsWithTheMalformedAnswerNotSilence()
    {
        _server.UdpFault = HostileDnsFault.BadLabel;
        await using var services = DnsServices.Build(_server.Server,
            o => o.Timeout = TimeSpan.FromSeconds(30),
            s => s.Configure<LodestarOptions>(o => o.ResolutionTimeout = TimeSpan.FromSeconds(3)));
        var resolver = services.GetRequiredService<IEndpointResolver>();

        var error = await Assert.ThrowsAsync<EndpointResolutionException>(async () => await resolver.GetEndpointsAsync("web.lodestar.test", "dns"));

        Assert.DoesNotContain("no error yet", error.Message, StringComparison.Ordinal);
        Assert.Contains($"DNS server {_server.Server} sent a malformed answer to A web.lodestar.test over UDP: A name at byte 35 uses the unsupported label type 0x40.",
            error.Message, StringComparison.Ordinal);
    }

    private Task Run(TimeProvider clock, RecordingObserver observer, CancellationToken cancellationToken)
    {
        var options = new DnsSourceOptions();
        Assert.True(DnsServiceQuery.TryParse("web.lodestar.test", options, out var query));
        var resolver = TestResolvers.Create([_server.EndPoint], timeout: TimeSpan.FromSeconds(30));
        var source = new DnsEndpointSource("web.lodestar.test", query, resolver, options, clock, NullLogger.Instance);
        return Task.Run(() => source.RunAsync(observer, cancellationToken));
    }
}
