using Lodestar.Grpc.Tests.Infrastructure;
using Lodestar.LoadBalancing;
using Lodestar.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Grpc.Tests;

/// <summary>
/// The layers in front of the policy (priority failover, traffic splits) apply to calls on a <c>lodestar:///</c> channel
/// as they do to HttpClient requests: the balancer asks the same per-service balancer.
/// </summary>
public sealed class LayersOnChannelsTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Priority_LevelZeroConnecting_CallsWaitForItThenFailOverWhenItLeaves()
    {
        // Arrange: b0 at priority 0, b1 and b2 at priority 1; the channel starts with no connection at all.
        await using var host = await GrpcTestHost.StartAsync(3);
        var b = host.Backends;
        host.Configuration.Provider.Replace(Endpoints((b[0].Address, 0, null), (b[1].Address, 1, null), (b[2].Address, 1, null)));
        var client = host.CreateClient(LodestarGrpcPolicies.RoundRobin);

        // Act: the first calls go out while priority 0's connection is still being made: they wait for it, none fails
        // and none goes to priority 1 (which may be ready first).
        var before = await GrpcTestHost.CountUnaryAsync(client, 100);
        host.Configuration.Provider.Replace(Endpoints((b[1].Address, 1, null), (b[2].Address, 1, null)));
        await Eventually.TrueAsync(() => AvoidsAsync(client, "b0"), s_wait, "calls leave the removed priority 0");
        var after = await GrpcTestHost.CountUnaryAsync(client, 100);

        // Assert
        Assert.Equal("b0", Assert.Single(before).Key);
        Assert.Equal(["b1", "b2"], after.Keys.Order());
        Assert.All(after.Values, c => Assert.InRange(c, 45, 55));
    }

    [Fact]
    public async Task TrafficSplit_TenPercentToVersionTwo_CanaryGetsItsShareOfCalls()
    {
        // Arrange: b2 is the canary (version v2); the service's split sends it 10 % of calls.
        await using var host = await GrpcTestHost.StartAsync(3, services => services.Configure<LoadBalancingOptions>(GrpcTestHost.Service,
            o => o.TrafficSplits.Add(new TrafficSplit { Percent = 10, Match = { ["version"] = "v2" } })));
        var b = host.Backends;
        host.Configuration.Provider.Replace(Endpoints((b[0].Address, 0, "v1"), (b[1].Address, 0, "v1"), (b[2].Address, 0, "v2")));
        var client = host.CreateClient(LodestarGrpcPolicies.RoundRobin);
        await LodestarBalancerFactoryTests.WarmUpAsync(host, client);

        // Act
        var counts = await GrpcTestHost.CountUnaryAsync(client, 1000);

        // Assert: 100 expected on the canary (binomial sd about 9.5), the rest even over the two others.
        Assert.InRange(counts.GetValueOrDefault("b2"), 60, 140);
        Assert.InRange(counts.GetValueOrDefault("b0"), 390, 510);
        Assert.InRange(counts.GetValueOrDefault("b1"), 390, 510);
    }

    /// <summary>
    /// Whether ten calls all avoid <paramref name="instance"/>. While a change is applied, the channel may drop the old
    /// endpoint's connection a moment before the service's balancer stops choosing it; a call picked in that moment
    /// fails UNAVAILABLE (a known limit, see docs/grpc.md), which counts as no here.
    /// </summary>
    private static async Task<bool> AvoidsAsync(Protos.Echo.EchoClient client, string instance)
    {
        try
        {
            return !(await GrpcTestHost.CountUnaryAsync(client, 10)).ContainsKey(instance);
        }
        catch (global::Grpc.Core.RpcException ex) when (ex.StatusCode == global::Grpc.Core.StatusCode.Unavailable)
        {
            return false;
        }
    }

    private static IEnumerable<KeyValuePair<string, string?>> Endpoints(params (string Address, int Priority, string? Version)[] endpoints)
    {
        for (var i = 0; i < endpoints.Length; i++)
        {
            var prefix = $"Lodestar:Services:{GrpcTestHost.Service}:Endpoints:{i}:";
            yield return new(prefix + "Address", endpoints[i].Address);
            yield return new(prefix + "Priority", endpoints[i].Priority.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (endpoints[i].Version is { } version)
            {
                yield return new(prefix + "Metadata:version", version);
            }
        }
    }
}
