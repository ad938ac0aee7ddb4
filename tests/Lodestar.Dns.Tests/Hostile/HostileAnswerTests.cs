using System.Net;
using Lodestar.Dns.Resolver;
using Lodestar.Dns.Resolver.Internal;
using Lodestar.Testing.Dns;

namespace Lodestar.Dns.Tests.Hostile;

/// <summary>
/// The resolver against a server that misbehaves on purpose: each bad answer fails the query at once with an error that
/// names the server and what was wrong, except replies with another ID, which RFC 5452 says to ignore.
/// </summary>
public sealed class HostileAnswerTests : IAsyncLifetime
{
    private readonly HostileDnsServer _server = HostileDnsServer.Start();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Theory]
    [InlineData(HostileDnsFault.Garbage, "over UDP: A name at byte 12 uses the unsupported label type 0x40.")]
    [InlineData(HostileDnsFault.TruncatedHeader, "over UDP: The DNS message is 6 bytes, shorter than its 12-byte header.")]
    [InlineData(HostileDnsFault.WrongQuestion, "over UDP: It answers another question: A evil.lodestar.test.")]
    [InlineData(HostileDnsFault.PointerLoop, "points to byte 35, not back before its own labels at byte 35: a pointer loop.")]
    [InlineData(HostileDnsFault.BadLabel, "A name at byte 35 uses the unsupported label type 0x40.")]
    [InlineData(HostileDnsFault.RecordOverrun, "The A record 'web.lodestar.test' at byte 35 (answer 1 of 1) claims 204 bytes of data, but only 4 remain in the 51-byte message.")]
    [InlineData(HostileDnsFault.Oversized, "over UDP: The datagram is larger than the 1232 bytes the query allowed.")]
    public async Task QueryAsync_MalformedUdpAnswer_FailsAtOnceNamingServerAndProblem(HostileDnsFault fault, string problem)
    {
        _server.UdpFault = fault;
        // A timeout far beyond the test's patience: the error must come from the answer, not from waiting.
        var resolver = TestResolvers.Create([_server.EndPoint], timeout: TimeSpan.FromSeconds(30));

        var error = await Assert.ThrowsAsync<DnsResolutionException>(() => resolver.QueryAsync("web.lodestar.test", DnsRecordType.A, CancellationToken.None))
            .WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Contains($"DNS server {_server.Server} sent a malformed answer to A web.lodestar.test", error.Message, StringComparison.Ordinal);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
        Assert.IsType<DnsFormatException>(error.InnerException);
    }

    [Fact]
    public async Task QueryAsync_MalformedAnswerEveryAttempt_AsksAgainThenReportsIt()
    {
        _server.UdpFault = HostileDnsFault.RecordOverrun;
        var resolver = TestResolvers.Create([_server.EndPoint], timeout: TimeSpan.FromSeconds(30), attempts: 2);

        var error = await Assert.ThrowsAsync<DnsResolutionException>(() => resolver.QueryAsync("web.lodestar.test", DnsRecordType.A, CancellationToken.None));

        Assert.Equal(2, _server.UdpQueries);
        Assert.Contains("2 attempt(s)", error.Message, StringComparison.Ordinal);
        Assert.Contains("claims 204 bytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task QueryAsync_RepliesWithOtherIdsOnly_IgnoresThemAndTimesOutSayingSo()
    {
        _server.UdpFault = HostileDnsFault.WrongId;
        var resolver = TestResolvers.Create([_server.EndPoint], timeout: TimeSpan.FromMilliseconds(500));

        var error = await Assert.ThrowsAsync<DnsResolutionException>(() => resolver.QueryAsync("web.lodestar.test", DnsRecordType.A, CancellationToken.None));

        var timeout = Assert.IsType<TimeoutException>(error.InnerException);
        Assert.Equal($"DNS server {_server.Server} did not answer A web.lodestar.test within 500 ms; 3 datagram(s) carrying another query ID were ignored.", timeout.Message);
    }

    [Fact]
    public async Task LookupAsync_RepliesWithOtherIdsBeforeTheAnswer_IgnoresThemAndReturnsTheAnswer()
    {
        _server.UdpFault = HostileDnsFault.WrongIdThenGood;
        _server.Addresses = [IPAddress.Parse("127.0.0.4")];
        var resolver = TestResolvers.Create([_server.EndPoint], timeout: TimeSpan.FromSeconds(30));

        var result = await resolver.LookupAsync("web.lodestar.test.", DnsRecordType.A, CancellationToken.None);

        Assert.Equal(IPAddress.Parse("127.0.0.4"), Assert.Single(result.Records).Address);
    }

    [Fact]
    public async Task QueryAsync_SilentServer_TimesOutNamingServer()
    {
        _server.UdpFault = HostileDnsFault.Silence;
        var resolver = TestResolvers.Create([_server.EndPoint], timeout: TimeSpan.FromMilliseconds(300));

        var error = await Assert.ThrowsAsync<DnsResolutionException>(() => resolver.QueryAsync("web.lodestar.test", DnsRecordType.A, CancellationToken.None));

        Assert.Equal($"DNS server {_server.Server} did not answer A web.lodestar.test within 300 ms.", Assert.IsType<TimeoutException>(error.InnerException).Message);
    }

    [Theory]
    [InlineData(HostileDnsFault.Garbage, "over TCP (asked after a truncated UDP answer): A name at byte 12 uses the unsupported label type 0x40.")]
    [InlineData(HostileDnsFault.CloseMidMessage, "over TCP (asked after a truncated UDP answer): It closed the connection after 25 of the 51 bytes its length prefix announced.")]
    [InlineData(HostileDnsFault.WrongId, "over TCP (asked after a truncated UDP answer): Its ID is")]
    [InlineData(HostileDnsFault.PointerLoop, "a pointer loop.")]
    public async Task QueryAsync_TruncatedUdpThenBrokenTcpAnswer_FailsNamingServerAndProblem(HostileDnsFault tcpFault, string problem)
    {
        _server.UdpFault = HostileDnsFault.Truncated;
        _server.TcpFault = tcpFault;
        var resolver = TestResolvers.Create([_server.EndPoint], timeout: TimeSpan.FromSeconds(30));

        var error = await Assert.ThrowsAsync<DnsResolutionException>(() => resolver.QueryAsync("web.lodestar.test", DnsRecordType.A, CancellationToken.None))
            .WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Contains($"DNS server {_server.Server} sent a malformed answer to A web.lodestar.test", error.Message, StringComparison.Ordinal);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
        Assert.Equal(1, _server.TcpQueries);
    }

    [Fact]
    public async Task QueryAsync_TruncatedUdpAnswerCutMidRecord_AsksOverTcpInsteadOfFailing()
    {
        _server.UdpFault = HostileDnsFault.TruncatedMidRecord;
        var resolver = TestResolvers.Create([_server.EndPoint], timeout: TimeSpan.FromSeconds(30));

        var message = await resolver.QueryAsync("web.lodestar.test", DnsRecordType.A, CancellationToken.None);

        Assert.Equal(IPAddress.Parse("127.0.0.2"), Assert.Single(message.Answers).Address);
        Assert.Equal(1, _server.TcpQueries);
    }

    [Fact]
    public async Task QueryAsync_TcpAnswerDrips_TimesOutSayingHowMuchArrived()
    {
        _server.UdpFault = HostileDnsFault.Truncated;
        _server.TcpFault = HostileDnsFault.Drip;
        _server.DripInterval = TimeSpan.FromMilliseconds(50);
        var resolver = TestResolvers.Create([_server.EndPoint], timeout: TimeSpan.FromMilliseconds(600));

        var error = await Assert.ThrowsAsync<DnsResolutionException>(() => resolver.QueryAsync("web.lodestar.test", DnsRecordType.A, CancellationToken.None));

        var timeout = Assert.IsType<TimeoutException>(error.InnerException);
        Assert.StartsWith($"DNS server {_server.Server} did not finish its answer to A web.lodestar.test over TCP (asked after a truncated UDP answer) within 600 ms: ",
            timeout.Message, StringComparison.Ordinal);
        Assert.EndsWith(" of 51 bytes arrived.", timeout.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task QueryAsync_TcpServerSilent_TimesOutNamingServerAndTcp()
    {
        _server.UdpFault = HostileDnsFault.Truncated;
        _server.TcpFault = HostileDnsFault.Silence;
        var resolver = TestResolvers.Create([_server.EndPoint], timeout: TimeSpan.FromMilliseconds(300));

        var error = await Assert.ThrowsAsync<DnsResolutionException>(() => resolver.QueryAsync("web.lodestar.test", DnsRecordType.A, CancellationToken.None));

        Assert.Equal($"DNS server {_server.Server} did not answer A web.lodestar.test over TCP (asked after a truncated UDP answer) within 300 ms.",
            Assert.IsType<TimeoutException>(error.InnerException).Message);
    }

    [Fact]
    public async Task QueryAsync_ServerBehavesAgain_Recovers()
    {
        _server.UdpFault = HostileDnsFault.PointerLoop;
        var resolver = TestResolvers.Create([_server.EndPoint], timeout: TimeSpan.FromSeconds(30));
        await Assert.ThrowsAsync<DnsResolutionException>(() => resolver.QueryAsync("web.lodestar.test", DnsRecordType.A, CancellationToken.None));

        _server.UdpFault = HostileDnsFault.None;
        var message = await resolver.QueryAsync("web.lodestar.test", DnsRecordType.A, CancellationToken.None);

        Assert.Equal(IPAddress.Parse("127.0.0.2"), Assert.Single(message.Answers).Address);
    }
}
