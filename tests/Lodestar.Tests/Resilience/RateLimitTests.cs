using Lodestar.Resilience.Admission;
using Lodestar.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Tests.Resilience;

public sealed class RateLimitTests
{
    [Fact]
    public async Task RateLimit_BucketEmpty_RejectsAtOnceUntilReplenished()
    {
        // Arrange: a bucket of 2, one token per second.
        var time = new FakeTimeProvider();
        var handler = new ScriptedHandler(_ => ScriptedHandler.Status(200));
        await using var host = ResilienceTestHost.Create(o =>
        {
            o.RateLimit.Enabled = true;
            o.RateLimit.TokenLimit = 2;
            o.RateLimit.TokensPerPeriod = 1;
            o.RateLimit.ReplenishmentPeriod = TimeSpan.FromSeconds(1);
        }, time, handler);
        host.SetEndpoints("127.0.0.1:9001");
        var client = host.CreateClient();

        // Act + Assert
        (await client.GetAsync("http://orders/x")).Dispose();
        (await client.GetAsync("http://orders/x")).Dispose();
        var rejected = await Assert.ThrowsAsync<RateLimitedException>(() => client.GetAsync("http://orders/x"));
        Assert.Equal("orders", rejected.ServiceName);
        Assert.Equal(2, handler.Count);

        time.Advance(TimeSpan.FromSeconds(1));
        (await client.GetAsync("http://orders/x")).Dispose();
        await Assert.ThrowsAsync<RateLimitedException>(() => client.GetAsync("http://orders/x"));
        Assert.Equal(3, handler.Count);
    }

    [Fact]
    public async Task RateLimit_Disabled_NoLimit()
    {
        var handler = new ScriptedHandler(_ => ScriptedHandler.Status(200));
        await using var host = ResilienceTestHost.Create(primaryHandler: handler);
        host.SetEndpoints("127.0.0.1:9001");
        var client = host.CreateClient();

        for (var i = 0; i < 200; i++)
        {
            (await client.GetAsync("http://orders/x")).Dispose();
        }

        Assert.Equal(200, handler.Count);
    }
}
