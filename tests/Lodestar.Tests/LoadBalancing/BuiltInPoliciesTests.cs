using Lodestar.Endpoints;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;

namespace Lodestar.Tests.LoadBalancing;

public sealed class BuiltInPoliciesTests
{
    [Theory]
    [InlineData(LoadBalancingPolicies.RoundRobin)]
    [InlineData(LoadBalancingPolicies.Random)]
    [InlineData(LoadBalancingPolicies.LeastRequest)]
    public void Pick_EqualEndpoints_SpreadsEvenly(string policy)
    {
        var balancer = Create(policy, 4);
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < 40_000; i++)
        {
            var picked = balancer.Pick(null)!.Endpoint.Address;
            counts[picked] = counts.GetValueOrDefault(picked) + 1;
        }

        Assert.Equal(4, counts.Count);
        Assert.All(counts.Values, c => Assert.InRange(c, 9_500, 10_500));
    }

    [Fact]
    public void RoundRobin_NewPickers_StartAtRandomEndpoints()
    {
        var starts = new HashSet<string>();
        for (var i = 0; i < 50; i++)
        {
            starts.Add(Create(LoadBalancingPolicies.RoundRobin, 5).Pick(null)!.Endpoint.Address);
        }

        Assert.True(starts.Count > 1, "many clients must not all start on the same endpoint");
    }

    [Fact]
    public void Update_NewSet_KeepsPerEndpointState()
    {
        var balancer = Create(LoadBalancingPolicies.RoundRobin, 3);
        var state = balancer.Endpoints.Single(s => s.Endpoint.Port == 8001);
        state.OnRequestStarted();
        state.OnRequestCompleted(false, TimeSpan.FromMilliseconds(5));
        state.OnRequestStarted();

        balancer.Update(EndpointSet.Create("orders", "test", [Endpoint(8001), Endpoint(8002), Endpoint(8003)], 2, DateTimeOffset.UnixEpoch));

        var after = balancer.Endpoints.Single(s => s.Endpoint.Port == 8001);
        Assert.Same(state, after);
        Assert.Equal(1, after.InFlight);
        Assert.Equal(2, after.Requests);
        Assert.Equal(1, after.Failures);
        Assert.DoesNotContain(balancer.Endpoints, s => s.Endpoint.Port == 8000);
    }

    [Fact]
    public void Pick_ZeroWeightEndpoint_IsNeverChosen()
    {
        var balancer = BalancerFixture.NewBalancer("orders", new RoundRobinPolicy(RandomSource.Shared), TimeProvider.System, 0.5, RandomSource.Shared);
        balancer.Update(EndpointSet.Create("orders", "test", [Endpoint(8000), DiscoveredEndpoint.Create("127.0.0.1", 8001, weight: 0)], 1, DateTimeOffset.UnixEpoch));

        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(8000, balancer.Pick(null)!.Endpoint.Port);
        }
    }

    [Fact]
    public void Pick_NoEndpoints_ReturnsNull()
    {
        var balancer = Create(LoadBalancingPolicies.LeastRequest, 0);
        Assert.Null(balancer.Pick(null));
    }

    [Theory]
    [InlineData(LoadBalancingPolicies.RoundRobin)]
    [InlineData(LoadBalancingPolicies.Random)]
    [InlineData(LoadBalancingPolicies.LeastRequest)]
    public void Pick_WarmPicker_AllocatesNothing(string policy)
    {
        var balancer = Create(policy, 100);
        balancer.Pick(null);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            balancer.Pick(null);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Pick_AllButOneAttempted_ReturnsTheUntriedOne()
    {
        var balancer = Create(LoadBalancingPolicies.RoundRobin, 3);
        var tried = balancer.Endpoints.Where(s => s.Endpoint.Port != 8002).ToList();

        Assert.Equal(8002, balancer.Pick(new PickContext { Attempted = tried })!.Endpoint.Port);
        Assert.Null(balancer.Pick(new PickContext { Attempted = balancer.Endpoints.ToList() }));
    }

    [Fact]
    public async Task Update_WhileThePickerIsBuilt_DoesNotAnnounceTheNewVersionYet()
    {
        // Callers treat SetVersion > 0 as "ready to pick": it must not be published before the picker.
        using var building = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var balancer = BalancerFixture.NewBalancer("orders", new GatedPolicy(building, release), TimeProvider.System, 0.5, RandomSource.Shared);
        var update = Task.Run(() => balancer.Update(EndpointSet.Create("orders", "test", [Endpoint(8000), Endpoint(8001)], 1, DateTimeOffset.UnixEpoch)));
        Assert.True(building.Wait(TimeSpan.FromSeconds(10)), "the picker build started");

        Assert.Equal(0, balancer.SetVersion);
        release.Set();
        await update;

        Assert.Equal(1, balancer.SetVersion);
        Assert.NotNull(balancer.Pick(null));
    }

    private sealed class GatedPolicy(ManualResetEventSlim building, ManualResetEventSlim release) : ILoadBalancingPolicy
    {
        public string Name => "gated";

        public EndpointPicker CreatePicker(LoadBalancingContext context)
        {
            building.Set();
            release.Wait(TimeSpan.FromSeconds(10));
            return new RoundRobinPolicy(RandomSource.Shared).CreatePicker(context);
        }
    }

    private static DiscoveredEndpoint Endpoint(int port) => DiscoveredEndpoint.Create("127.0.0.1", port);

    private static ServiceBalancer Create(string policy, int count)
    {
        ILoadBalancingPolicy p = policy switch
        {
            LoadBalancingPolicies.RoundRobin => new RoundRobinPolicy(RandomSource.Shared),
            LoadBalancingPolicies.Random => new RandomPolicy(RandomSource.Shared),
            _ => new LeastRequestPolicy(RandomSource.Shared),
        };
        var balancer = BalancerFixture.NewBalancer("orders", p, TimeProvider.System, 0.5, RandomSource.Shared);
        balancer.Update(EndpointSet.Create("orders", "test", Enumerable.Range(0, count).Select(i => Endpoint(8000 + i)), 1, DateTimeOffset.UnixEpoch));
        return balancer;
    }
}
