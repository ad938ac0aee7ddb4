using Lodestar.Endpoints;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using static Lodestar.Tests.LoadBalancing.BalancerFixture;

namespace Lodestar.Tests.LoadBalancing;

public class LayeredRoutingTests
{
    private static readonly LoadBalancingOptions s_zoneA = new() { LocalZone = "a" };

    [Fact]
    public void Pick_LocalZoneHealthy_StaysInLocalZone()
    {
        // Arrange
        var balancer = Create(new RoundRobinPolicy(new SeededRandom(1)), ThreeZones(), s_zoneA);

        // Act
        var counts = Count(balancer, 10_000);

        // Assert
        Assert.Equal(10_000, counts.Where(c => ZoneOf(c.Key) == "a").Sum(c => c.Value));
    }

    [Fact]
    public void Pick_LocalZoneShortOfCapacity_SpillsProportionally()
    {
        // Arrange: 2 of 5 local endpoints ejected: 0.6 healthy × 1.4 = 84 % stays local, 8 % to each other zone.
        var endpoints = ThreeZones();
        var balancer = Create(new RoundRobinPolicy(new SeededRandom(1)), endpoints, s_zoneA, random: new SeededRandom(2));
        State(balancer, endpoints[0]).SetEjected(true);
        State(balancer, endpoints[1]).SetEjected(true);
        balancer.RefreshHealth();

        // Act
        var counts = Count(balancer, 100_000);

        // Assert
        AssertShare(0.84, counts.Where(c => ZoneOf(c.Key) == "a").Sum(c => c.Value), 100_000, 0.02, "zone a");
        AssertShare(0.08, counts.Where(c => ZoneOf(c.Key) == "b").Sum(c => c.Value), 100_000, 0.02, "zone b");
        AssertShare(0.08, counts.Where(c => ZoneOf(c.Key) == "c").Sum(c => c.Value), 100_000, 0.02, "zone c");
        Assert.False(balancer.InPanic);
    }

    [Fact]
    public void Pick_TooFewEndpointsForZoneAwareness_UsesAllZones()
    {
        // Arrange: 4 endpoints, below the default minimum of 6.
        var endpoints = new[] { Endpoint(0, zone: "a"), Endpoint(1, zone: "a"), Endpoint(2, zone: "b"), Endpoint(3, zone: "b") };
        var balancer = Create(new RoundRobinPolicy(new SeededRandom(1)), endpoints, s_zoneA);

        // Act / Assert
        Assert.Equal(4, Count(balancer, 1_000).Count);
    }

    [Fact]
    public void Pick_TopologyHintsOnEveryEndpoint_UsesEndpointsHintedForLocalZone()
    {
        // Arrange: the hints send zone a's traffic to endpoints 0, 1 and 6 (6 sits in zone b).
        var endpoints = Enumerable.Range(0, 9).Select(i => Endpoint(i, zone: i < 3 ? "a" : i < 6 ? "b" : "c",
            metadata: new Dictionary<string, string> { [PickerBuilder.ZoneHintsKey] = i is 0 or 1 or 6 ? "a, b" : i < 6 ? "b" : "c" })).ToArray();
        var balancer = Create(new RoundRobinPolicy(new SeededRandom(1)), endpoints, s_zoneA);

        // Act
        var counts = Count(balancer, 3_000);

        // Assert
        Assert.Equal(new[] { endpoints[0].Address, endpoints[1].Address, endpoints[6].Address }.Order(), counts.Keys.Order());
    }

    [Fact]
    public void Pick_PriorityZeroHealthy_UsesOnlyPriorityZero()
    {
        // Arrange
        var endpoints = Enumerable.Range(0, 10).Select(i => Endpoint(i, priority: i < 5 ? 0 : 1)).ToArray();
        var balancer = Create(new RoundRobinPolicy(new SeededRandom(1)), endpoints);

        // Act / Assert
        Assert.All(Count(balancer, 1_000).Keys, a => Assert.Contains(a, endpoints[..5].Select(e => e.Address)));
    }

    [Fact]
    public void Pick_PriorityZeroDegraded_OverflowsToNextPriority()
    {
        // Arrange: 3 of 5 healthy in priority 0: 0.6 × 1.4 = 84 % stays, 16 % overflows to priority 1.
        var endpoints = Enumerable.Range(0, 10).Select(i => Endpoint(i, priority: i < 5 ? 0 : 1)).ToArray();
        var balancer = Create(new RoundRobinPolicy(new SeededRandom(1)), endpoints, random: new SeededRandom(4));
        State(balancer, endpoints[0]).SetEjected(true);
        State(balancer, endpoints[1]).SetActiveHealthy(false);
        balancer.RefreshHealth();

        // Act
        var counts = Count(balancer, 100_000);

        // Assert
        AssertShare(0.16, counts.Where(c => endpoints[5..].Any(e => e.Address == c.Key)).Sum(c => c.Value), 100_000, 0.02, "priority 1");
        Assert.DoesNotContain(endpoints[0].Address, counts.Keys);
        Assert.Equal(8, balancer.Routable.Count);
    }

    [Fact]
    public void Pick_PriorityZeroAllDown_FailsOverWithoutPanic()
    {
        // Arrange
        var endpoints = Enumerable.Range(0, 10).Select(i => Endpoint(i, priority: i < 5 ? 0 : 1)).ToArray();
        var balancer = Create(new RoundRobinPolicy(new SeededRandom(1)), endpoints);
        foreach (var endpoint in endpoints[..5])
        {
            State(balancer, endpoint).SetEjected(true);
        }

        balancer.RefreshHealth();

        // Act
        var counts = Count(balancer, 1_000);

        // Assert
        Assert.False(balancer.InPanic);
        Assert.All(counts.Keys, a => Assert.Contains(a, endpoints[5..].Select(e => e.Address)));
    }

    [Theory]
    [InlineData(4, false, 6)]
    [InlineData(6, true, 10)]
    public void Pick_UnhealthyEndpoints_PanicBelowThreshold(int ejected, bool panic, int routable)
    {
        // Arrange
        var endpoints = Enumerable.Range(0, 10).Select(i => Endpoint(i)).ToArray();
        var balancer = Create(new LeastRequestPolicy(new SeededRandom(1)), endpoints);
        foreach (var endpoint in endpoints[..ejected])
        {
            State(balancer, endpoint).SetEjected(true);
        }

        // Act
        balancer.RefreshHealth();
        var counts = Count(balancer, 10_000);

        // Assert
        Assert.Equal(panic, balancer.InPanic);
        Assert.Equal(routable, balancer.Routable.Count);
        Assert.Equal(routable, counts.Count);
    }

    [Fact]
    public void Pick_PanicThresholdZeroAllUnhealthy_ReturnsNothing()
    {
        // Arrange
        var endpoints = Enumerable.Range(0, 3).Select(i => Endpoint(i)).ToArray();
        var balancer = Create(new RoundRobinPolicy(new SeededRandom(1)), endpoints, panicThreshold: 0);
        foreach (var endpoint in endpoints)
        {
            State(balancer, endpoint).SetEjected(true);
        }

        // Act
        balancer.RefreshHealth();

        // Assert
        Assert.False(balancer.InPanic);
        Assert.Null(balancer.Pick(null));
    }

    [Fact]
    public void Pick_TrafficSplitTenPercent_SubsetGetsTenPercentWithin2Percent()
    {
        // Arrange: 2 of 10 endpoints are v2.
        var (balancer, v2) = Canary(new LoadBalancingOptions());

        // Act
        var counts = Count(balancer, 100_000);

        // Assert
        AssertShare(0.10, counts.Where(c => v2.Contains(c.Key)).Sum(c => c.Value), 100_000, 0.02, "v2 subset");
    }

    [Fact]
    public void Pick_TrafficSplitWithHashKey_StickyPerKey()
    {
        // Arrange
        var (balancer, v2) = Canary(new LoadBalancingOptions { HashKeyHeader = "X-User" });

        // Act
        var keysInV2 = 0;
        for (var user = 0; user < 20_000; user++)
        {
            var inV2 = v2.Contains(balancer.Pick(HashPolicyTests.Request(header: "u" + user))!.Endpoint.Address);
            for (var again = 0; again < 3; again++)
            {
                Assert.Equal(inV2, v2.Contains(balancer.Pick(HashPolicyTests.Request(header: "u" + user))!.Endpoint.Address));
            }

            keysInV2 += inV2 ? 1 : 0;
        }

        // Assert
        AssertShare(0.10, keysInV2, 20_000, 0.02, "keys routed to v2");
    }

    [Fact]
    public void Pick_TrafficSplitSubsetEmpty_AllTrafficToTheRest()
    {
        // Arrange
        var options = new LoadBalancingOptions();
        options.TrafficSplits.Add(new TrafficSplit { Percent = 30, Match = { ["version"] = "v3" } });
        var balancer = Create(new RoundRobinPolicy(new SeededRandom(1)), Enumerable.Range(0, 4).Select(i => Endpoint(i)), options);

        // Act / Assert
        Assert.Equal(4, Count(balancer, 1_000).Count);
    }

    private static (ServiceBalancer Balancer, HashSet<string> V2) Canary(LoadBalancingOptions options)
    {
        options.TrafficSplits.Add(new TrafficSplit { Percent = 10, Match = { ["version"] = "v2" } });
        var endpoints = Enumerable.Range(0, 10).Select(i => Endpoint(i, metadata: new Dictionary<string, string> { ["version"] = i < 2 ? "v2" : "v1" })).ToArray();
        var balancer = Create(new RoundRobinPolicy(new SeededRandom(1)), endpoints, options, random: new SeededRandom(9));
        return (balancer, endpoints[..2].Select(e => e.Address).ToHashSet());
    }

    private static DiscoveredEndpoint[] ThreeZones()
        => Enumerable.Range(0, 15).Select(i => Endpoint(i, zone: i < 5 ? "a" : i < 10 ? "b" : "c")).ToArray();

    private static string ZoneOf(string address)
    {
        var last = int.Parse(address.Split('.')[3].Split(':')[0], System.Globalization.CultureInfo.InvariantCulture) - 1;
        return last < 5 ? "a" : last < 10 ? "b" : "c";
    }
}
