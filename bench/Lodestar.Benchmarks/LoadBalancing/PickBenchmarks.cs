using BenchmarkDotNet.Attributes;
using Lodestar.Endpoints;
using Lodestar.Health.Internal;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;

namespace Lodestar.Benchmarks.LoadBalancing;

/// <summary>Cost of one pick per policy and endpoint count: time and bytes allocated (the goal is 0 B).</summary>
/// <remarks>Hash policies read their key from a request header, the common path.</remarks>
[MemoryDiagnoser]
public class PickBenchmarks
{
    private ServiceBalancer _balancer = null!;
    private readonly HttpRequestMessage _request = BenchmarkServices.Request();

    [ParamsSource(nameof(Policies))]
    public string Policy { get; set; } = LoadBalancingPolicies.RoundRobin;

    [Params(10, 100, 1_000, 10_000)]
    public int Endpoints { get; set; }

    public static IEnumerable<string> Policies => BenchmarkServices.PolicyNames;

    [GlobalSetup]
    public void Setup()
    {
        _balancer = BenchmarkServices.CreateBalancer(Policy);
        _balancer.Stage.Update(BenchmarkServices.Set(Endpoints, 1));
    }

    [Benchmark]
    public EndpointState? Pick() => _balancer.Pick(new PickContext(_request));
}

/// <summary>Time to apply a new endpoint set and rebuild the picker (off the request path), per policy and size.</summary>
[MemoryDiagnoser]
public class RebuildBenchmarks
{
    private ServiceBalancer _balancer = null!;
    private EndpointSet[] _sets = null!;
    private long _version = 1;

    [ParamsSource(nameof(Policies))]
    public string Policy { get; set; } = LoadBalancingPolicies.RoundRobin;

    [Params(10, 100, 1_000, 10_000)]
    public int Endpoints { get; set; }

    public static IEnumerable<string> Policies => BenchmarkServices.PolicyNames;

    [GlobalSetup]
    public void Setup()
    {
        _balancer = BenchmarkServices.CreateBalancer(Policy);
        _balancer.Stage.Update(BenchmarkServices.Set(Endpoints, 1));
        _sets = [BenchmarkServices.Set(Endpoints, 1), BenchmarkServices.Set(Endpoints - 1, 1)];
    }

    /// <summary>Alternates between N and N−1 endpoints, so every call applies a real change.</summary>
    [Benchmark]
    public void Rebuild()
    {
        var version = ++_version;
        var template = _sets[version & 1];
        _balancer.Stage.Update(EndpointSet.Create(template.ServiceName, template.SourceName, template.Endpoints, version, template.UpdatedAt));
    }
}

/// <summary>Cost of finding and hashing a request's hash key (header, cookie, request option).</summary>
[MemoryDiagnoser]
public class HashKeyBenchmarks
{
    private readonly HashKeyExtractor _header = new(new LoadBalancingOptions { HashKeyHeader = "X-User" });
    private readonly HashKeyExtractor _cookie = new(new LoadBalancingOptions { HashKeyCookie = "session" });
    private readonly HashKeyExtractor _option = new(new LoadBalancingOptions());
    private readonly HttpRequestMessage _request = BenchmarkServices.Request();

    [GlobalSetup]
    public void Setup()
    {
        _request.Headers.Add("Cookie", "theme=dark; session=0f9a6c2e-7d1b-4c55-9a1e-3b2f1d7c9e42; lang=en");
        _request.Options.Set(LoadBalancingRequestOptions.HashKey, "user-1234567");
    }

    [Benchmark(Baseline = true)]
    public ulong Header() => _header.TryGetHash(new PickContext(_request), out var hash) ? hash : 0;

    [Benchmark]
    public ulong Cookie() => _cookie.TryGetHash(new PickContext(_request), out var hash) ? hash : 0;

    [Benchmark]
    public ulong RequestOption() => _option.TryGetHash(new PickContext(_request), out var hash) ? hash : 0;
}

internal static class BenchmarkServices
{
    public static readonly string[] PolicyNames =
    [
        LoadBalancingPolicies.RoundRobin, LoadBalancingPolicies.Random, LoadBalancingPolicies.LeastRequest,
        LoadBalancingPolicies.WeightedRoundRobin, LoadBalancingPolicies.PeakEwma, LoadBalancingPolicies.RingHash, LoadBalancingPolicies.Maglev,
    ];

    public static HttpRequestMessage Request()
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "http://orders/api");
        request.Headers.Add("X-User", "user-1234567");
        return request;
    }

    public static ServiceBalancer CreateBalancer(string policyName)
    {
        ILoadBalancingPolicy policy = policyName switch
        {
            LoadBalancingPolicies.RoundRobin => new RoundRobinPolicy(RandomSource.Shared),
            LoadBalancingPolicies.Random => new RandomPolicy(RandomSource.Shared),
            LoadBalancingPolicies.LeastRequest => new LeastRequestPolicy(RandomSource.Shared),
            LoadBalancingPolicies.WeightedRoundRobin => new WeightedRoundRobinPolicy(RandomSource.Shared),
            LoadBalancingPolicies.PeakEwma => new PeakEwmaPolicy(RandomSource.Shared),
            LoadBalancingPolicies.RingHash => new RingHashPolicy(RandomSource.Shared),
            _ => new MaglevPolicy(RandomSource.Shared),
        };
        var options = new LoadBalancingOptions { HashKeyHeader = "X-User" };
        var stage = new HealthStage("orders", null, HealthSettings.Disabled, options, TimeProvider.System, RandomSource.Shared);
        return new ServiceBalancer(stage, policy, 0.5, RandomSource.Shared, options);
    }

    /// <summary>Endpoints with weights 1 to 3, so weighted policies take their weighted paths.</summary>
    public static EndpointSet Set(int count, long version)
        => EndpointSet.Create("orders", "bench",
            Enumerable.Range(0, count).Select(i => DiscoveredEndpoint.Create($"10.{i / 62500}.{i / 250 % 250}.{(i % 250) + 1}", 8080, weight: 1 + (i % 3))),
            version, DateTimeOffset.UnixEpoch);
}
