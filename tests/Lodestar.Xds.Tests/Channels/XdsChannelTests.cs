using Envoy.Config.Route.V3;
using Grpc.Core;
using Lodestar.LoadBalancing;
using Lodestar.Testing;
using Lodestar.Xds.Channels.Internal;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Tests.Infrastructure;
using Lodestar.Xds.Tests.Protos;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;

namespace Lodestar.Xds.Tests.Channels;

/// <summary>gRPC channels addressed <c>xds:///listener</c>, against the fake control plane and real gRPC backends.</summary>
public sealed class XdsChannelTests
{
    [Fact]
    public async Task Call_RouteToCluster_ReachesTheClustersEdsEndpoints()
    {
        // Arrange: cluster "a" has two endpoints (backends a and a2); cluster "b" is not routed to.
        await using var h = await XdsChannelHarness.StartAsync(["a", "a2", "b"]);
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", Assignment("a", ("127.0.0.1", h.Backends["a"].Port), ("127.0.0.1", h.Backends["a2"].Port)));
        h.SetRoutes(PrefixRoute("/", "a"));
        await Eventually.TrueAsync(async () => (await h.CountAsync(4)).Count == 2, TimeSpan.FromSeconds(10), "both endpoints have a ready connection");

        // Act
        var counts = await h.CountAsync(40);

        // Assert: round robin over the cluster's two endpoints, nothing to the other cluster.
        Assert.Equal(["a", "a2"], counts.Keys.Order(StringComparer.Ordinal));
        Assert.InRange(counts["a"], 10, 30);
        Assert.Equal(0, h.Backends["b"].Calls);
    }

    [Fact]
    public async Task Call_EdsPushMovesTheEndpoints_CallsFollowThem()
    {
        // Arrange
        await using var h = await XdsChannelHarness.StartAsync(["a", "b"]);
        h.SetRoutes(PrefixRoute("/", "a"));
        Assert.Equal("a", await h.CallAsync());

        // Act: cluster a's endpoint moves to backend b's address.
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", Assignment("a", ("127.0.0.1", h.Backends["b"].Port)));

        // Assert
        await Eventually.TrueAsync(async () => await h.CallAsync() == "b", TimeSpan.FromSeconds(10), "calls follow the pushed endpoints");
        var after = await h.CountAsync(20);
        Assert.Equal(20, after.GetValueOrDefault("b"));
    }

    [Fact]
    public async Task Call_PickedWhileTheClustersBalancerLagsTheChannel_WaitsForTheBalancerThenFollows()
    {
        // Arrange: cluster b holds backends b and b2, reached with a header; everything else goes to cluster a (backend a).
        // The channel's resolver watches cluster a before Lodestar's balancer of it does, so it hears of an EDS push
        // first; the test holds the balancer while it builds its picker for the pushed set, and a call is picked in
        // between: the channel has dropped a's connection, the balancer still picks a. The interleaving left a call
        // waiting out its deadline on a loaded machine.
        var policy = new HoldingPolicy();
        await using var h = await XdsChannelHarness.StartAsync(["a", "b", "b2"], configure: s => s.AddSingleton<ILoadBalancingPolicy>(policy));
        int b = h.Backends["b"].Port, b2 = h.Backends["b2"].Port;
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "b", Assignment("b", ("127.0.0.1", b), ("127.0.0.1", b2)));
        var toB = PrefixRoute("/", "b");
        toB.Match.Headers.Add(new HeaderMatcher { Name = "x-cluster", ExactMatch = "b" });
        h.SetRoutes(toB, PrefixRoute("/", "a"));
        var headers = new Metadata { { "x-cluster", "b" } };
        await Eventually.TrueAsync(async () => (await h.Client.HelloAsync(new HelloRequest(), headers, DateTime.UtcNow.AddSeconds(10))).Instance == "b2",
            s_wait, "cluster b's two connections are ready");
        Assert.Equal("a", await h.CallAsync());
        using var picks = new PickCounter(h.Services);
        var held = policy.HoldSetWith("a", b);

        // Act: cluster a moves to b and b2, whose connections the channel has.
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", Assignment("a", ("127.0.0.1", b), ("127.0.0.1", b2)));
        await held.WaitAsync(s_wait);
        var picked = picks.Next();
        var call = h.CallAsync();
        await Task.WhenAny(picked, call).WaitAsync(s_wait);
        Assert.False(call.IsCompleted, "the call was answered before the balancer applied the pushed set");
        policy.Release();

        // Assert: the call waited for the balancer, then went to one of the pushed endpoints.
        Assert.Contains(await call.WaitAsync(s_wait), new[] { "b", "b2" });
    }

    [Fact]
    public async Task Call_WeightedRoute90To10_SplitsCallsWithinTolerance()
    {
        // Arrange
        await using var h = await XdsChannelHarness.StartAsync(["stable", "canary"]);
        h.SetRoutes(XdsTrafficHarness.WeightedRoute("/", ("stable", 90), ("canary", 10)));
        await Eventually.TrueAsync(async () => await h.CallAsync() == "canary", TimeSpan.FromSeconds(10), "both clusters take calls");

        // Act
        var counts = await h.CountAsync(1000);

        // Assert: 100 expected for the canary; ±50 is more than five standard deviations of the binomial (9.5).
        Assert.Equal(1000, counts.GetValueOrDefault("stable") + counts.GetValueOrDefault("canary"));
        Assert.InRange(counts.GetValueOrDefault("canary"), 50, 150);
    }

    [Fact]
    public async Task Call_RouteByPath_SendsEachMethodToItsRoutesCluster()
    {
        // Arrange: the Hello method goes to b, everything else to a.
        await using var h = await XdsChannelHarness.StartAsync(["a", "b"]);
        h.SetRoutes(PrefixRoute("/lodestar.xds.tests.Greeter/Hello", "b"), PrefixRoute("/", "a"));

        // Act
        var counts = await h.CountAsync(10);

        // Assert
        Assert.Equal(10, counts.GetValueOrDefault("b"));
    }

    [Fact]
    public async Task Call_RoutedClusterLosesAllEndpoints_FailsAtOnceNamingTheCluster()
    {
        // Arrange: Hello goes to cluster b, everything else to a.
        await using var h = await XdsChannelHarness.StartAsync(["a", "b"]);
        h.SetRoutes(PrefixRoute("/lodestar.xds.tests.Greeter/Hello", "b"), PrefixRoute("/", "a"));
        Assert.Equal("b", await h.CallAsync());

        // Act: the control plane empties cluster b.
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "b", Assignment("b", Array.Empty<(string, int)>()));
        RpcException? failure = null;
        await Eventually.TrueAsync(async () =>
        {
            try
            {
                await h.CallAsync();
                return false;
            }
            catch (RpcException ex)
            {
                failure = ex;
                return true;
            }
        }, TimeSpan.FromSeconds(10), "calls to the emptied cluster fail");

        // Assert: at once (not at the deadline), naming the cluster.
        Assert.Equal(StatusCode.Unavailable, failure!.StatusCode);
        Assert.Contains("'b'", failure.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("no endpoints", failure.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Call_RouteHashesOnAHeader_SameHeaderValueReachesTheSameEndpoint()
    {
        // Arrange: a ring-hash cluster of three backends; the route hashes on metadata x-user.
        await using var h = await XdsChannelHarness.StartAsync(["a", "a2", "a3"]);
        h.Server.SetResource(XdsTypeUrls.Cluster, "a", EdsCluster("a", policy: Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.RingHash));
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", Assignment("a",
            ("127.0.0.1", h.Backends["a"].Port), ("127.0.0.1", h.Backends["a2"].Port), ("127.0.0.1", h.Backends["a3"].Port)));
        var route = PrefixRoute("/", "a");
        route.Route_.HashPolicy.Add(new Envoy.Config.Route.V3.RouteAction.Types.HashPolicy
        {
            Header = new Envoy.Config.Route.V3.RouteAction.Types.HashPolicy.Types.Header { HeaderName = "x-user" },
        });
        h.SetRoutes(route);
        await Eventually.TrueAsync(async () => (await h.CountAsync(12)).Count == 3, TimeSpan.FromSeconds(10), "all three endpoints take calls");

        // Act: ten calls for each of twenty users.
        var byUser = new Dictionary<string, HashSet<string>>();
        for (var user = 0; user < 20; user++)
        {
            var seen = byUser[$"u{user}"] = [];
            for (var i = 0; i < 10; i++)
            {
                var reply = await h.Client.HelloAsync(new HelloRequest(), new Metadata { { "x-user", $"u{user}" } }, deadline: DateTime.UtcNow.AddSeconds(10));
                seen.Add(reply.Instance);
            }
        }

        // Assert: every user sticks to one endpoint, and the users spread over more than one.
        Assert.All(byUser.Values, seen => Assert.Single(seen));
        Assert.True(byUser.Values.Select(static s => s.Single()).Distinct().Count() > 1, "the users' keys spread over the ring");
    }

    [Fact]
    public async Task Call_ControlPlaneAwayThirtySeconds_KeepsTheLastGoodAddresses()
    {
        // Arrange
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var h = await XdsChannelHarness.StartAsync(["a", "b"], clock);
        h.SetRoutes(PrefixRoute("/", "a"));
        Assert.Equal("a", await h.CallAsync());
        var streams = h.Server.StreamsOpened;

        // Act: the control plane is away for 30 s of the client's clock (its reconnects fail), with calls every second.
        await h.Server.StopAsync();
        var failures = 0;
        var answered = 0;
        for (var second = 0; second < 30; second++)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            for (var i = 0; i < 5; i++)
            {
                try
                {
                    answered += await h.CallAsync() == "a" ? 1 : 0;
                }
                catch (RpcException)
                {
                    failures++;
                }
            }
        }

        // Assert: every call reached the last good endpoint; once the server is back, its next push applies.
        Assert.Equal(0, failures);
        Assert.Equal(150, answered);
        await h.Server.StartAgainAsync();
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", Assignment("a", ("127.0.0.1", h.Backends["b"].Port)));
        await Eventually.TrueAsync(() =>
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            return h.Server.StreamsOpened > streams;
        }, TimeSpan.FromSeconds(20), "the client opens a new stream once the server is back");
        await Eventually.TrueAsync(async () => await h.CallAsync() == "b", TimeSpan.FromSeconds(10), "the pushed endpoints apply");
    }

    [Fact]
    public async Task Call_ClusterAtMaxRequests_FailsUnavailableUntilACallEnds()
    {
        // Arrange: cluster a allows two calls in flight (circuit_breakers, DEFAULT priority).
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        var cluster = EdsCluster("a");
        cluster.CircuitBreakers = new Envoy.Config.Cluster.V3.CircuitBreakers();
        cluster.CircuitBreakers.Thresholds.Add(new Envoy.Config.Cluster.V3.CircuitBreakers.Types.Thresholds
        {
            Priority = Envoy.Config.Core.V3.RoutingPriority.Default,
            MaxRequests = 2,
        });
        h.Server.SetResource(XdsTypeUrls.Cluster, "a", cluster);
        h.SetRoutes(PrefixRoute("/", "a"));
        Assert.Equal("a", await h.CallAsync());
        var backend = h.Backends["a"];
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        backend.Gate = gate;

        // Act: two calls wait at the backend; a third is refused by the breaker.
        var held = new[] { h.CallAsync(), h.CallAsync() };
        await Eventually.TrueAsync(() => backend.Waiting == 2, TimeSpan.FromSeconds(10), "two calls reach the backend");
        var refused = await Assert.ThrowsAsync<RpcException>(h.CallAsync);
        backend.Gate = null;
        gate.SetResult();
        await Task.WhenAll(held);

        // Assert: the refusal names the cluster and the threshold; with the calls done, calls go through again.
        Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
        Assert.Contains("'a'", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("max_requests", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(3, backend.Calls);
        Assert.Equal("a", await h.CallAsync());
    }

    [Fact]
    public async Task Call_ListenerDoesNotExist_FailsUnavailableNamingTheListener()
    {
        // Arrange: a channel for a listener the control plane does not have.
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var h = await XdsChannelHarness.StartAsync(["a"], clock);
        using var channel = global::Grpc.Net.Client.GrpcChannel.ForAddress("xds:///missing.test:1",
            new global::Grpc.Net.Client.GrpcChannelOptions { Credentials = ChannelCredentials.Insecure, ServiceProvider = h.Services });
        var client = new Greeter.GreeterClient(channel);

        // Act: the call waits until the client gives up on the listener (ResourceDoesNotExistTimeout on its clock).
        var call = client.HelloAsync(new HelloRequest(), deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync;
        await Eventually.TrueAsync(() =>
        {
            clock.Advance(TimeSpan.FromSeconds(5));
            return call.IsCompleted;
        }, TimeSpan.FromSeconds(20), "the call fails once the listener is known not to exist");

        // Assert
        var error = await Assert.ThrowsAsync<RpcException>(() => call);
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Contains("'missing.test:1'", error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("does not exist", error.Status.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("xds:///greeter.test:50051", "greeter.test:50051")]
    [InlineData("xds:///orders.default.svc.cluster.local:8080", "orders.default.svc.cluster.local:8080")]
    public void ParseListener_Address_ReturnsTheListenerName(string address, string expected)
        => Assert.Equal(expected, XdsResolverFactory.ParseListener(new Uri(address)));

    [Theory]
    [InlineData("xds:///", "names no listener")]
    [InlineData("xds://authority.example/greeter", "federation is not supported")]
    public void ParseListener_BadAddress_ThrowsNamingTheAddress(string address, string expected)
    {
        var error = Assert.Throws<ArgumentException>(() => XdsResolverFactory.ParseListener(new Uri(address)));
        Assert.Contains(address, error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Round robin in place of the built-in one, which can hold the build of a service's picker for a set holding a port
    /// until <see cref="Release"/>. (A set of one endpoint is picked without the policy.)
    /// </summary>
    private sealed class HoldingPolicy : ILoadBalancingPolicy
    {
        private readonly ManualResetEventSlim _released = new(initialState: true);
        private volatile Hold? _hold;
        private int _turn;

        public string Name => LoadBalancingPolicies.RoundRobin;

        /// <summary>Holds the next build for <paramref name="service"/> whose endpoints include <paramref name="port"/>; completes when it starts.</summary>
        public Task HoldSetWith(string service, int port)
        {
            var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _released.Reset();
            _hold = new Hold(service, port, reached);
            return reached.Task;
        }

        public void Release()
        {
            _hold = null;
            _released.Set();
        }

        public EndpointPicker CreatePicker(LoadBalancingContext context)
        {
            if (_hold is { } hold && hold.Service == context.ServiceName && context.Endpoints.Any(e => e.Endpoint.Port == hold.Port))
            {
                hold.Reached.TrySetResult();
                _released.Wait(s_wait);
            }

            return new Picker(this, context.Endpoints);
        }

        private sealed record Hold(string Service, int Port, TaskCompletionSource Reached);

        private sealed class Picker(HoldingPolicy owner, IReadOnlyList<EndpointState> endpoints) : EndpointPicker
        {
            public override EndpointState Pick(in Lodestar.LoadBalancing.PickContext context)
                => endpoints[(int)((uint)Interlocked.Increment(ref owner._turn) % (uint)endpoints.Count)];
        }
    }
}
