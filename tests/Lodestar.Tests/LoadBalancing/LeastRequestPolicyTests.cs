using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Lodestar.Testing;
using Microsoft.Extensions.Time.Testing;
using static Lodestar.Tests.LoadBalancing.BalancerFixture;

namespace Lodestar.Tests.LoadBalancing;

public class LeastRequestPolicyTests
{
    [Fact]
    public void Pick_EqualWeightsOneBusy_NeverPicksTheBusyOne()
    {
        // Arrange
        var endpoints = Enumerable.Range(0, 4).Select(i => Endpoint(i)).ToArray();
        var balancer = Create(new LeastRequestPolicy(new SeededRandom(3)), endpoints);
        var busy = State(balancer, endpoints[0]);
        for (var i = 0; i < 5; i++)
        {
            busy.OnRequestStarted();
        }

        // Act
        var counts = Count(balancer, 10_000);

        // Assert: of two distinct candidates the busy one always loses.
        Assert.False(counts.ContainsKey(endpoints[0].Address));
        Assert.Equal(3, counts.Count);
    }

    [Fact]
    public void Pick_UnequalWeightsIdle_SharesFollowWeightsWithin3Percent()
    {
        // Arrange
        var endpoints = new[] { Endpoint(0, 1), Endpoint(1, 2), Endpoint(2, 3), Endpoint(3, 4) };
        var balancer = Create(new LeastRequestPolicy(new SeededRandom(3)), endpoints);

        // Act
        var counts = Count(balancer, 100_000);

        // Assert
        foreach (var endpoint in endpoints)
        {
            AssertShare(endpoint.Weight / 10.0, counts[endpoint.Address], 100_000, 0.03, endpoint.Address);
        }
    }

    [Theory]
    [InlineData(1.0, 2.0 / 3)]
    [InlineData(0.0, 1.0 / 3)]
    [InlineData(2.0, 1.0 / (1 + (2.0 / 16)))]
    public void Pick_UnequalWeightsWithActiveRequests_FollowsActiveRequestBias(double bias, double expectedLightShare)
    {
        // Arrange: heavy (weight 2) has 3 in flight; effective weights are 1 and 2 / 4 ^ bias (Envoy).
        var light = Endpoint(0, 1);
        var heavy = Endpoint(1, 2);
        var balancer = Create(new LeastRequestPolicy(new SeededRandom(3)), [light, heavy], new LoadBalancingOptions { ActiveRequestBias = bias });
        var heavyState = State(balancer, heavy);
        for (var i = 0; i < 3; i++)
        {
            heavyState.OnRequestStarted();
        }

        // Act
        var counts = Count(balancer, 100_000);

        // Assert
        AssertShare(expectedLightShare, counts[light.Address], 100_000, 0.02, "light endpoint");
    }

    [Fact]
    public void Pick_ChoiceCountThree_PrefersTheLeastLoaded()
    {
        // Arrange: loads 0..9; with 3 choices the idle endpoint wins whenever it is sampled (1 - 0.9^3 of picks).
        var endpoints = Enumerable.Range(0, 10).Select(i => Endpoint(i)).ToArray();
        var balancer = Create(new LeastRequestPolicy(new SeededRandom(3)), endpoints, new LoadBalancingOptions { ChoiceCount = 3 });
        for (var i = 0; i < endpoints.Length; i++)
        {
            var state = State(balancer, endpoints[i]);
            for (var j = 0; j < i; j++)
            {
                state.OnRequestStarted();
            }
        }

        // Act
        var counts = Count(balancer, 100_000);

        // Assert
        AssertShare(1 - Math.Pow(0.9, 3), counts[endpoints[0].Address], 100_000, 0.02, "idle endpoint");
    }

    [Fact]
    public void Pick_NewEndpointInSlowStart_GetsRampedShare()
    {
        // Arrange
        var clock = new FakeTimeProvider();
        var options = new LoadBalancingOptions { SlowStartWindow = TimeSpan.FromSeconds(30) };
        var old = Enumerable.Range(0, 3).Select(i => Endpoint(i)).ToArray();
        var balancer = Create(new LeastRequestPolicy(new SeededRandom(3)), old, options, clock);
        clock.Advance(TimeSpan.FromMinutes(2));
        var added = Endpoint(3);
        Update(balancer, [.. old, added]);

        // Act / Assert: at 15 s the factor is 0.5; after the window it is a plain least-request pick again.
        clock.Advance(TimeSpan.FromSeconds(15));
        AssertShare(0.5 / 3.5, Count(balancer, 50_000)[added.Address], 50_000, 0.02, "at half the window");
        clock.Advance(TimeSpan.FromSeconds(20));
        AssertShare(0.25, Count(balancer, 50_000)[added.Address], 50_000, 0.02, "after the window");
    }
}
