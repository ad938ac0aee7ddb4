using BenchmarkDotNet.Attributes;
using Lodestar.Endpoints;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;

namespace Lodestar.Benchmarks.LoadBalancing;

/// <summary>Cost of one pick per policy and endpoint count: time and bytes allocated (the goal is 0 B).</summary>
[MemoryDiagnoser]
public class PickBenchmarks
{
    private ServiceBalancer _balancer = null!;
    private readonly HttpRequestMessage _request = new(HttpMethod.Get, "http://orders/api");

    [Params(LoadBalancingPolicies.RoundRobin, LoadBalancingPolicies.Random, LoadBalancingPolicies.LeastRequest)]
    public string Policy { get; set; } = LoadBalancingPolicies.RoundRobin;

    [Params(10, 100, 1_000)]
    public int Endpoints { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        ILoadBalancingPolicy policy = Policy switch
        {
            LoadBalancingPolicies.RoundRobin => new RoundRobinPolicy(RandomSource.Shared),
            LoadBalancingPolicies.Random => new RandomPolicy(RandomSource.Shared),
            _ => new LeastRequestPolicy(RandomSource.Shared),
        };
        _balancer = new ServiceBalancer("orders", policy, TimeProvider.System, 0.5, RandomSource.Shared);
        var endpoints = Enumerable.Range(0, Endpoints).Select(i => ServiceEndpoint.Create($"10.0.{i / 250}.{i % 250 + 1}", 8080));
        _balancer.Update(EndpointSet.Create("orders", "bench", endpoints, 1, DateTimeOffset.UnixEpoch));
    }

    [Benchmark]
    public EndpointState? Pick() => _balancer.Pick(_request);
}
