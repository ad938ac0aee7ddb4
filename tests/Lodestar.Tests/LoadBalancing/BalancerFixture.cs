using Lodestar.Endpoints;
using Lodestar.Health;
using Lodestar.Health.Internal;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;

namespace Lodestar.Tests.LoadBalancing;

/// <summary>Seeded randomness: deterministic runs of statistical tests.</summary>
internal sealed class SeededRandom(int seed) : RandomSource
{
    private readonly Random _random = new(seed);

    public override int Next(int maxExclusive) => _random.Next(maxExclusive);

    public override double NextDouble() => _random.NextDouble();
}

/// <summary>Builds balancers over synthetic endpoints and counts picks.</summary>
internal static class BalancerFixture
{
    /// <summary>Picks for a first attempt of <paramref name="request"/> (or with no request).</summary>
    public static EndpointState? Pick(this ServiceBalancer balancer, HttpRequestMessage? request) => balancer.Pick(new PickContext(request));

    private static long s_version;

    public static DiscoveredEndpoint Endpoint(int i, int weight = 1, string? zone = null, int priority = 0, IReadOnlyDictionary<string, string>? metadata = null)
        => DiscoveredEndpoint.Create($"10.0.{i / 250}.{(i % 250) + 1}", 8080, weight: weight, zone: zone, metadata: metadata, priority: priority);

    public static ServiceBalancer Create(ILoadBalancingPolicy policy, IEnumerable<DiscoveredEndpoint> endpoints, LoadBalancingOptions? options = null,
        TimeProvider? timeProvider = null, double panicThreshold = 0.5, RandomSource? random = null)
    {
        var balancer = NewBalancer("orders", policy, timeProvider ?? TimeProvider.System, panicThreshold, random ?? new SeededRandom(7), options ?? new LoadBalancingOptions());
        Update(balancer, endpoints);
        return balancer;
    }

    /// <summary>A balancer over a health stage of its own with health tracking off, fed by hand with <see cref="Update(ServiceBalancer, EndpointSet)"/>.</summary>
    public static ServiceBalancer NewBalancer(string service, ILoadBalancingPolicy policy, TimeProvider timeProvider, double panicThreshold, RandomSource random,
        LoadBalancingOptions? options = null)
    {
        var stage = new HealthStage(service, null, HealthSettings.Disabled, options, timeProvider, random);
        return new ServiceBalancer(stage, policy, panicThreshold, random, options);
    }

    /// <summary>Applies an endpoint set to the balancer's stage.</summary>
    public static void Update(this ServiceBalancer balancer, EndpointSet set) => balancer.Stage.Update(set);

    /// <summary>Ejects (or returns) an endpoint by hand; call <see cref="RefreshHealth"/> to publish.</summary>
    public static void SetEjected(this EndpointState state, bool ejected)
        => state.SetEjection(ejected ? new EndpointEjection(EjectionReasons.Consecutive5xx, DateTimeOffset.UnixEpoch, TimeSpan.FromMinutes(1), 1, 0) : null);

    /// <summary>Has the stage publish a new snapshot after health was changed by hand.</summary>
    public static void RefreshHealth(this ServiceBalancer balancer) => balancer.Stage.PublishHealth();

    public static void Update(ServiceBalancer balancer, IEnumerable<DiscoveredEndpoint> endpoints)
        => balancer.Stage.Update(EndpointSet.Create("orders", "test", endpoints, Interlocked.Increment(ref s_version), DateTimeOffset.UnixEpoch));

    public static Dictionary<string, int> Count(ServiceBalancer balancer, int picks, HttpRequestMessage? request = null)
    {
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < picks; i++)
        {
            var address = balancer.Pick(request)!.Endpoint.Address;
            counts[address] = counts.GetValueOrDefault(address) + 1;
        }

        return counts;
    }

    public static EndpointState State(ServiceBalancer balancer, DiscoveredEndpoint endpoint)
        => balancer.Endpoints.Single(s => s.Endpoint.Equals(endpoint));

    public static void AssertShare(double expected, int actual, int total, double tolerance, string what)
    {
        var share = (double)actual / total;
        Assert.True(Math.Abs(share - expected) <= tolerance, $"{what}: share {share:P2}, expected {expected:P2} ± {tolerance:P1}");
    }
}
