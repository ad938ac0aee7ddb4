using Lodestar.Testing;
using Lodestar.Tests.Resilience;

namespace Lodestar.Tests.Health;

public sealed class ActiveHealthCheckTests
{
    private static ResilienceTestHost Host(bool holdNew = false) => ResilienceTestHost.Create(o =>
    {
        o.HealthChecks.Enabled = true;
        o.HealthChecks.Interval = TimeSpan.FromMilliseconds(50);
        o.HealthChecks.IntervalJitter = TimeSpan.FromMilliseconds(10);
        o.HealthChecks.Timeout = TimeSpan.FromSeconds(1);
        o.HealthChecks.UnhealthyThreshold = 2;
        o.HealthChecks.HealthyThreshold = 2;
        o.HealthChecks.HoldNewEndpointsUntilHealthy = holdNew;
        o.OutlierDetection.Enabled = false;
    });

    [Fact]
    public async Task ActiveChecks_EndpointFailsChecks_TakesNoTrafficUntilItPassesAgain()
    {
        // Arrange
        await using var good = await TestBackend.StartAsync("good");
        await using var sick = await TestBackend.StartAsync("sick");
        await using var host = Host();
        host.SetEndpoints(good.Address, sick.Address);
        var client = host.CreateClient();
        (await client.GetAsync("http://orders/x")).Dispose();
        var state = (await host.FindStateAsync(sick.Address))!;

        // Act: the backend starts failing its checks.
        sick.Status = 503;
        var balancer = await host.GetBalancerAsync();
        await Eventually.TrueAsync(() => !state.IsActiveHealthy && !balancer.Routable.Contains(state), TimeSpan.FromSeconds(10), "failing checks take the endpoint out");
        var routableWhileSick = balancer.Routable.Count;

        // Assert: it comes back once checks pass again.
        sick.Status = 200;
        await Eventually.TrueAsync(() => state.IsActiveHealthy && balancer.Routable.Contains(state), TimeSpan.FromSeconds(10), "passing checks bring the endpoint back");
        Assert.Equal(1, routableWhileSick);
        Assert.Equal(2, balancer.Routable.Count);
    }

    [Fact]
    public async Task ActiveChecks_HoldNewEndpoints_NewEndpointWaitsForItsFirstPassingCheck()
    {
        // Arrange
        await using var first = await TestBackend.StartAsync("first");
        await using var second = await TestBackend.StartAsync("second");
        second.Status = 503;
        await using var host = Host(holdNew: true);
        host.SetEndpoints(first.Address);
        var client = host.CreateClient();
        (await client.GetAsync("http://orders/x")).Dispose();

        // Act: a new endpoint appears whose checks fail.
        host.SetEndpoints(first.Address, second.Address);
        await Eventually.TrueAsync(() => host.FindStateAsync(second.Address).Result is not null, TimeSpan.FromSeconds(5), "the new endpoint is seen");
        var state = (await host.FindStateAsync(second.Address))!;
        await Eventually.TrueAsync(() => second.Requests >= 2, TimeSpan.FromSeconds(5), "the new endpoint is checked");
        for (var i = 0; i < 20; i++)
        {
            (await client.GetAsync("http://orders/x")).Dispose();
        }

        var heldBack = !state.IsActiveHealthy;
        var callerAttempts = state.Requests;

        // Assert: one passing check lets it in.
        second.Status = 200;
        await Eventually.TrueAsync(() => state.IsActiveHealthy, TimeSpan.FromSeconds(5), "the first passing check admits the endpoint");
        Assert.True(heldBack);
        Assert.Equal(0, callerAttempts);
        Assert.Equal(200, (int)(await client.GetAsync("http://orders/x")).StatusCode);
    }
}
