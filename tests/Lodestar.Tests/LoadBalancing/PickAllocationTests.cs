using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Lodestar.Testing;
using Microsoft.Extensions.Time.Testing;
using static Lodestar.Tests.LoadBalancing.BalancerFixture;

namespace Lodestar.Tests.LoadBalancing;

public class PickAllocationTests
{
    public static TheoryData<string> AllPolicies =>
    [
        LoadBalancingPolicies.RoundRobin, LoadBalancingPolicies.Random, LoadBalancingPolicies.LeastRequest,
        LoadBalancingPolicies.WeightedRoundRobin, LoadBalancingPolicies.PeakEwma, LoadBalancingPolicies.RingHash, LoadBalancingPolicies.Maglev,
    ];

    [Theory]
    [MemberData(nameof(AllPolicies))]
    public void Pick_WeightedZonedSplitService_AllocatesNothing(string name)
    {
        // Arrange: every layer at once (weights, zones, a canary split, a header hash key).
        var options = new LoadBalancingOptions { LocalZone = "a", HashKeyHeader = "X-User", SlowStartWindow = TimeSpan.FromMinutes(1) };
        options.TrafficSplits.Add(new TrafficSplit { Percent = 10, Match = { ["version"] = "v2" } });
        var endpoints = Enumerable.Range(0, 40).Select(i => Endpoint(i, weight: 1 + (i % 3), zone: i % 2 == 0 ? "a" : "b",
            metadata: new Dictionary<string, string> { ["version"] = i < 4 ? "v2" : "v1" }));
        // The clock stands still while picks are counted: on the system clock the slow-start ramp rebuilds the picker when
        // a step falls due, and a slow run's loop can span one (a rebuild allocates; a pick does not).
        var clock = new FakeTimeProvider();
        var balancer = BalancerFixture.Create(Policy(name), endpoints, options, clock);
        clock.Advance(TimeSpan.FromSeconds(30));
        var request = HashPolicyTests.Request(header: "user-42");
        for (var i = 0; i < 1_000; i++)
        {
            balancer.Pick(request);
        }

        // Act: the least of up to three rounds (see ThreadAllocation.Least): an allocating pick fails every round.
        var (allocated, _) = ThreadAllocation.Least(() =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                balancer.Pick(request);
            }
        });

        // Assert
        Assert.Equal(0, allocated);
    }

    internal static ILoadBalancingPolicy Policy(string name) => name switch
    {
        LoadBalancingPolicies.RoundRobin => new RoundRobinPolicy(new SeededRandom(1)),
        LoadBalancingPolicies.Random => new RandomPolicy(new SeededRandom(1)),
        LoadBalancingPolicies.LeastRequest => new LeastRequestPolicy(new SeededRandom(1)),
        LoadBalancingPolicies.WeightedRoundRobin => new WeightedRoundRobinPolicy(new SeededRandom(1)),
        LoadBalancingPolicies.PeakEwma => new PeakEwmaPolicy(new SeededRandom(1)),
        LoadBalancingPolicies.RingHash => new RingHashPolicy(new SeededRandom(1)),
        _ => new MaglevPolicy(new SeededRandom(1)),
    };
}
