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
    public async Task Priority_LevelZeroRemovedBeforeBalancerApplies_CallWaitsThenGoesToLevelOne()
    {
        // Arrange: b0 at priority 0, b1 at priority 1. The channel's resolver reads through a gate that, once armed,
        // gives the channel the next set and then holds the watcher's delivery before the service's balancer sees it.
        await using var host = await GrpcTestHost.StartAsync(2);
        var b = host.Backends;
        host.Configuration.Provider.Replace(Endpoints((b[0].Address, 0, null), (b[1].Address, 1, null)));
        var gate = new HeldDeliveryResolver(host.Services.GetRequiredService<Lodestar.Discovery.IEndpointResolver>());
        var client = host.CreateClient(LodestarGrpcPolicies.RoundRobin, channelServices: HeldDeliveryResolver.ForChannel(host.Services, gate));
        Assert.Equal("b0", Assert.Single(await GrpcTestHost.CountUnaryAsync(client, 20)).Key);
        using var picks = new PickCounter(host.Services);

        // Act: remove priority 0. The channel drops b0's connection; the balancer still chooses b0 (the order the two
        // deliveries take when the channel subscribed first, made to last as long as the test needs).
        gate.Arm();
        var change = Task.Run(() => host.Configuration.Provider.Replace(Endpoints((b[1].Address, 1, null))));
        string? answered;
        try
        {
            await gate.Held.WaitAsync(s_wait);
            var picked = picks.Next();
            var call = client.UnaryAsync(new Protos.EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10)).ResponseAsync;
            await Task.WhenAny(picked, call).WaitAsync(s_wait);
            Assert.False(call.IsFaulted, $"the call failed while the balancer lagged the channel: {call.Exception?.InnerException?.Message}");
            gate.Release();
            answered = (await call.WaitAsync(s_wait)).Instance;
        }
        finally
        {
            gate.Release();
            await change.WaitAsync(s_wait);
        }

        // Assert: the call waited for the balancer to apply the set, then went to priority 1.
        Assert.Equal("b1", answered);
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

    [Fact]
    public async Task Pick_BalancerAppliesTheChannelsSetWhileItsPickFails_CallWaitsForTheNextPicker()
    {
        // Arrange: the channel's picker already has the next set's version and no ready connection; the service's
        // balancer still has the old set (b0, b1). Its policy, asked again after b0 had no connection, lets the balancer
        // apply the next set (b1 alone) before it answers, so the pick fails on the old set while the versions match
        // when the picker checks them: the interleaving that failed a call on a loaded machine.
        var policy = new ApplyDuringPickPolicy();
        await using var host = await GrpcTestHost.StartAsync(2, services => services.AddSingleton<ILoadBalancingPolicy>(policy));
        var b = host.Backends;
        host.Configuration.Provider.Replace(Endpoints((b[0].Address, 0, null), (b[1].Address, 0, null)));
        var service = await host.Services.GetRequiredService<IServiceBalancing>().GetServiceAsync(GrpcTestHost.Service, policyName: ApplyDuringPickPolicy.PolicyName);
        var before = service.SetVersion;
        policy.OnSecondPick = () =>
        {
            host.Configuration.Provider.Replace(Endpoints((b[1].Address, 0, null)));
            SpinWait.SpinUntil(() => service.SetVersion > before, s_wait);
        };
        var picker = new Lodestar.Grpc.Internal.LodestarPicker(service, [], new Lodestar.Http.GrpcStatusOptions(), hashHeader: null, setVersion: before + 1);

        // Act
        var result = picker.Pick(new global::Grpc.Net.Client.Balancer.PickContext { Request = new HttpRequestMessage(HttpMethod.Post, "http://echo/") });

        // Assert: the balancer did move to the channel's set during the pick, and the call waits instead of failing.
        Assert.Equal(before + 1, service.SetVersion);
        Assert.Equal(global::Grpc.Net.Client.Balancer.PickResultType.Queue, result.Type);
    }

    /// <summary>
    /// Whether ten calls all avoid <paramref name="instance"/>. None may fail while the change is applied: a call picked
    /// while the channel has the new addresses and the service's balancer not yet waits for it.
    /// </summary>
    private static async Task<bool> AvoidsAsync(Protos.Echo.EchoClient client, string instance)
        => !(await GrpcTestHost.CountUnaryAsync(client, 10)).ContainsKey(instance);

    /// <summary>Always picks the first endpoint; runs <see cref="OnSecondPick"/> inside its second pick, once.</summary>
    private sealed class ApplyDuringPickPolicy : ILoadBalancingPolicy
    {
        public const string PolicyName = "apply-during-pick";
        private int _picks;

        public string Name => PolicyName;

        public Action? OnSecondPick { get; set; }

        public EndpointPicker CreatePicker(LoadBalancingContext context) => new First(this, context.Endpoints);

        private sealed class First(ApplyDuringPickPolicy owner, IReadOnlyList<EndpointState> endpoints) : EndpointPicker
        {
            public override EndpointState Pick(in PickContext context)
            {
                if (Interlocked.Increment(ref owner._picks) == 2 && owner.OnSecondPick is { } apply)
                {
                    apply();
                }

                return endpoints[0];
            }
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
