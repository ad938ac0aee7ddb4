using Lodestar.Testing;
using Lodestar.Xds.Resources;
using Microsoft.Extensions.Time.Testing;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;
using static Lodestar.Xds.Tests.Infrastructure.XdsTrafficHarness;

namespace Lodestar.Xds.Tests.Routing;

/// <summary>Traffic keeps flowing on the last accepted resources while the control plane misbehaves; the clock is fake.</summary>
public sealed class XdsControlPlaneFaultTests
{
    [Fact]
    public async Task Send_ServerAwayThirtySeconds_NoRequestFailsAndTheNextPushApplies()
    {
        // Arrange
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var h = await StartAsync(["stable", "canary"], timeProvider: clock);
        h.SetRoutes(PrefixRoute("/", "stable"));
        Assert.Equal("stable", await h.GetInstanceAsync("/"));
        var streams = h.Server.StreamsOpened;

        // Act: the control plane is away for 30 s of the client's clock, with requests every second.
        await h.Server.StopAsync();
        var failures = 0;
        var answered = 0;
        for (var second = 0; second < 30; second++)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            for (var i = 0; i < 10; i++)
            {
                try
                {
                    answered += await h.GetInstanceAsync("/") == "stable" ? 1 : 0;
                }
                catch (HttpRequestException)
                {
                    failures++;
                }
            }
        }

        await h.Server.StartAgainAsync();
        h.SetRoutes(PrefixRoute("/", "canary"));
        await Eventually.TrueAsync(() =>
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            return h.Server.StreamsOpened > streams;
        }, TimeSpan.FromSeconds(20), "the client opens a new stream once the server is back");

        // Assert: nothing failed while it was away, and its next push routes again.
        Assert.Equal(0, failures);
        Assert.Equal(300, answered);
        await Eventually.TrueAsync(async () => await h.GetInstanceAsync("/") == "canary", TimeSpan.FromSeconds(10), "the pushed route applies");
    }

    [Fact]
    public async Task Send_StreamResetInsteadOfAPush_ReconnectsAndAppliesItWithoutAFailedRequest()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var h = await StartAsync(["stable", "canary"], timeProvider: clock);
        h.SetRoutes(PrefixRoute("/", "stable"));
        Assert.Equal("stable", await h.GetInstanceAsync("/"));
        var streams = h.Server.StreamsOpened;

        // Act: the response carrying the new routes is replaced by a reset of the stream.
        h.Server.ResetOnNextResponse = true;
        h.SetRoutes(PrefixRoute("/", "canary"));
        var failures = 0;
        await Eventually.TrueAsync(async () =>
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            try
            {
                return await h.GetInstanceAsync("/") == "canary";
            }
            catch (HttpRequestException)
            {
                failures++;
                return false;
            }
        }, TimeSpan.FromSeconds(20), "the routes arrive on the new stream");

        // Assert
        Assert.Equal(0, failures);
        Assert.True(h.Server.StreamsOpened > streams);
    }

    [Fact]
    public async Task Send_ServerChangesItsNonces_AcksTheNewNonceAndFollowsThePush()
    {
        await using var h = await StartAsync(["stable", "canary"]);
        h.SetRoutes(PrefixRoute("/", "stable"));
        Assert.Equal("stable", await h.GetInstanceAsync("/"));

        h.Server.NoncePrefix = "restarted-";
        h.SetRoutes(PrefixRoute("/", "canary"));

        var ack = await h.Server.WaitForRequestAsync(r => r.TypeUrl == XdsTypeUrls.RouteConfiguration && r.ResponseNonce.StartsWith("restarted-", StringComparison.Ordinal),
            timeout: TimeSpan.FromSeconds(10));
        Assert.False(ack.IsNack);
        await Eventually.TrueAsync(async () => await h.GetInstanceAsync("/") == "canary", TimeSpan.FromSeconds(10), "the pushed route applies");
    }
}
