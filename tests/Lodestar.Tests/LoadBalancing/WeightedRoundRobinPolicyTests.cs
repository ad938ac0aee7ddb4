using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Lodestar.Testing;
using Microsoft.Extensions.Time.Testing;
using static Lodestar.Tests.LoadBalancing.BalancerFixture;

namespace Lodestar.Tests.LoadBalancing;

public class WeightedRoundRobinPolicyTests
{
    [Fact]
    public void Pick_UnequalWeights_SharesFollowWeightsWithin3Percent()
    {
        // Arrange
        var endpoints = new[] { Endpoint(0, 1), Endpoint(1, 2), Endpoint(2, 3), Endpoint(3, 4) };
        var balancer = Create(new WeightedRoundRobinPolicy(new SeededRandom(1)), endpoints);

        // Act
        var counts = Count(balancer, 100_000);

        // Assert
        for (var i = 0; i < endpoints.Length; i++)
        {
            AssertShare(endpoints[i].Weight / 10.0, counts[endpoints[i].Address], 100_000, 0.03, endpoints[i].Address);
        }
    }

    [Fact]
    public void Pick_WeightsThreeToOne_InterleavesWithoutBursts()
    {
        // Arrange: smooth WRR never sends more consecutive picks to the heavy endpoint than its weight ratio needs.
        var heavy = Endpoint(0, 3);
        var light = Endpoint(1, 1);
        var balancer = Create(new WeightedRoundRobinPolicy(new SeededRandom(1)), [heavy, light]);

        // Act
        var sequence = Enumerable.Range(0, 400).Select(_ => balancer.Pick(null)!.Endpoint).ToList();

        // Assert
        var longestRun = 0;
        var run = 0;
        foreach (var endpoint in sequence)
        {
            run = endpoint.Equals(heavy) ? run + 1 : 0;
            longestRun = Math.Max(longestRun, run);
        }

        Assert.True(longestRun <= 3, $"longest run of the heavy endpoint was {longestRun}");
        Assert.InRange(sequence.Count(e => e.Equals(light)), 95, 105);
    }

    [Fact]
    public void Pick_ManyEqualWeights_VisitsEachOncePerRound()
    {
        // Arrange
        var endpoints = Enumerable.Range(0, 10).Select(i => Endpoint(i, 5)).ToArray();
        var balancer = Create(new WeightedRoundRobinPolicy(new SeededRandom(1)), endpoints);

        // Act
        var round = Enumerable.Range(0, 10).Select(_ => balancer.Pick(null)!.Endpoint).ToHashSet();

        // Assert
        Assert.Equal(10, round.Count);
    }

    [Fact]
    public void Pick_NewEndpointInSlowStart_RampsUpOverWindow()
    {
        // Arrange: three endpoints long established, one just added; 60 s linear window, 10 % floor.
        var clock = new FakeTimeProvider();
        var options = new LoadBalancingOptions { SlowStartWindow = TimeSpan.FromSeconds(60) };
        var old = Enumerable.Range(0, 3).Select(i => Endpoint(i)).ToArray();
        var balancer = Create(new WeightedRoundRobinPolicy(new SeededRandom(1)), old, options, clock);
        clock.Advance(TimeSpan.FromMinutes(5));
        var added = Endpoint(3);
        Update(balancer, [.. old, added]);

        // Act / Assert: share = f / (3 + f) with f = max(0.1, elapsed / window).
        foreach (var (seconds, factor) in new[] { (0, 0.1), (15, 0.25), (30, 0.5), (45, 0.75), (60, 1.0) })
        {
            if (seconds > 0)
            {
                clock.Advance(TimeSpan.FromSeconds(15));
            }

            var counts = Count(balancer, 40_000);
            AssertShare(factor / (3 + factor), counts.GetValueOrDefault(added.Address), 40_000, 0.02, $"after {seconds} s");
        }
    }

    [Fact]
    public void Pick_RoundRobinWithSlowStart_RampsNewEndpoint()
    {
        // Arrange
        var clock = new FakeTimeProvider();
        var options = new LoadBalancingOptions { SlowStartWindow = TimeSpan.FromSeconds(10), SlowStartAggression = 2 };
        var old = Enumerable.Range(0, 4).Select(i => Endpoint(i)).ToArray();
        var balancer = Create(new RoundRobinPolicy(new SeededRandom(1)), old, options, clock);
        clock.Advance(TimeSpan.FromMinutes(1));
        var added = Endpoint(4);
        Update(balancer, [.. old, added]);
        clock.Advance(TimeSpan.FromSeconds(2.5));

        // Act
        var counts = Count(balancer, 50_000);

        // Assert: aggression 2 gives sqrt(0.25) = 0.5 of the weight.
        AssertShare(0.5 / 4.5, counts[added.Address], 50_000, 0.02, "ramping endpoint");
    }
}
