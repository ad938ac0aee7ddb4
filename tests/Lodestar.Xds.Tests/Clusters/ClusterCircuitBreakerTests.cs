using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Lodestar.Resilience.Admission;
using Lodestar.Testing;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Tests.Infrastructure;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;
using Cluster = Envoy.Config.Cluster.V3.Cluster;

namespace Lodestar.Xds.Tests.Clusters;

/// <summary>
/// A cluster's circuit-breaker thresholds on the <c>HttpClient</c> path: <c>max_requests</c> and <c>max_pending_requests</c>
/// as the concurrency limit, <c>max_retries</c> as the cap on retries in flight.
/// </summary>
public sealed class ClusterCircuitBreakerTests
{
    [Fact]
    public async Task Send_ClusterAtMaxRequests_RejectsTheNextRequestUntilOneEnds()
    {
        // Arrange: cluster a allows one request in flight and none waiting.
        await using var h = await XdsTrafficHarness.StartAsync(["a"]);
        h.Server.SetResource(XdsTypeUrls.Cluster, "a", Limited("a", maxRequests: 1, maxPending: 0));
        h.SetRoutes(PrefixRoute("/", "a"));
        Assert.Equal("a", await h.GetInstanceAsync("/"));
        var backend = h.Backends["a"];
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        backend.Gate = gate;

        // Act
        var held = h.GetInstanceAsync("/");
        await Eventually.TrueAsync(() => backend.InFlight == 1, TimeSpan.FromSeconds(10), "the first request reaches the backend");
        var rejected = await Assert.ThrowsAsync<ServiceOverloadedException>(() => h.GetInstanceAsync("/"));
        backend.Gate = null;
        gate.SetResult();

        // Assert: the rejection names the service and the limit; once the request ends, requests pass again.
        Assert.Equal("a", await held);
        Assert.Contains("Service 'a' already has 1 requests in flight and 0 waiting", rejected.Message, StringComparison.Ordinal);
        Assert.Equal("a", await h.GetInstanceAsync("/"));
    }

    [Fact]
    public async Task Send_ClientSetsItsOwnLimit_ItsLimitWinsOverTheClusters()
    {
        // Arrange: the cluster allows one request; the client itself allows two.
        await using var h = await XdsTrafficHarness.StartAsync(["a"], client: o => o.ConcurrencyLimit.MaxConcurrentRequests = 2);
        h.Server.SetResource(XdsTypeUrls.Cluster, "a", Limited("a", maxRequests: 1, maxPending: 0));
        h.SetRoutes(PrefixRoute("/", "a"));
        Assert.Equal("a", await h.GetInstanceAsync("/"));
        var backend = h.Backends["a"];
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        backend.Gate = gate;

        // Act
        var held = new[] { h.GetInstanceAsync("/"), h.GetInstanceAsync("/") };
        await Eventually.TrueAsync(() => backend.InFlight == 2, TimeSpan.FromSeconds(10), "both requests reach the backend");
        var rejected = await Assert.ThrowsAsync<ServiceOverloadedException>(() => h.GetInstanceAsync("/"));
        backend.Gate = null;
        gate.SetResult();

        // Assert
        Assert.Equal(["a", "a"], await Task.WhenAll(held));
        Assert.Contains("2 requests in flight", rejected.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Send_ClusterRaisesMaxRequests_TheNewLimitApplies()
    {
        // Arrange
        await using var h = await XdsTrafficHarness.StartAsync(["a"]);
        h.Server.SetResource(XdsTypeUrls.Cluster, "a", Limited("a", maxRequests: 1, maxPending: 0));
        h.SetRoutes(PrefixRoute("/", "a"));
        Assert.Equal("a", await h.GetInstanceAsync("/"));

        // Act: the control plane allows two.
        h.Server.SetResource(XdsTypeUrls.Cluster, "a", Limited("a", maxRequests: 2, maxPending: 0));
        var backend = h.Backends["a"];
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await Eventually.TrueAsync(async () =>
        {
            backend.Gate = gate;
            var first = h.GetInstanceAsync("/");
            await Eventually.TrueAsync(() => backend.InFlight == 1, TimeSpan.FromSeconds(10), "a request reaches the backend");
            var second = h.GetInstanceAsync("/");
            await Eventually.TrueAsync(() => backend.InFlight == 2 || second.IsCompleted, TimeSpan.FromSeconds(10), "the second request is admitted or rejected");
            var raised = backend.InFlight == 2;
            backend.Gate = null;
            gate.SetResult();
            Assert.Equal("a", await first);
            gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (raised)
            {
                Assert.Equal("a", await second);
                return true;
            }

            // The old limit still applied: the second request was turned away.
            await Assert.ThrowsAsync<ServiceOverloadedException>(() => second);
            return false;
        }, TimeSpan.FromSeconds(20), "two requests are in flight at once under the raised limit");
    }

    [Theory]
    [InlineData(0u, 1)]
    [InlineData(null, 2)]
    public async Task Send_ClusterMaxRetries_CapsTheRoutesRetries(uint? maxRetries, int expectedRequests)
    {
        // Arrange: cluster a has two endpoints; the route retries 5xx once; the cluster allows max_retries retries in
        // flight (Envoy's 3 when unset).
        await using var h = await XdsTrafficHarness.StartAsync(["a", "a2"]);
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", Assignment("a", ("127.0.0.1", h.Backends["a"].Port), ("127.0.0.1", h.Backends["a2"].Port)));
        var cluster = EdsCluster("a");
        if (maxRetries is { } max)
        {
            cluster.CircuitBreakers = new CircuitBreakers();
            cluster.CircuitBreakers.Thresholds.Add(new CircuitBreakers.Types.Thresholds { Priority = RoutingPriority.Default, MaxRetries = max });
        }

        h.Server.SetResource(XdsTypeUrls.Cluster, "a", cluster);
        h.SetRoutes(XdsTrafficHarness.WithRetry(PrefixRoute("/", "a"), "5xx", 1));
        await Eventually.TrueAsync(async () => await h.GetInstanceAsync("/") == "a2", TimeSpan.FromSeconds(10), "both endpoints take requests");
        h.Backends["a"].Status = 503;
        h.Backends["a2"].Status = 503;
        var before = h.Backends["a"].Requests + h.Backends["a2"].Requests;

        // Act
        using var response = await h.Http.GetAsync(XdsTrafficHarness.BaseUrl + "/");

        // Assert
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(expectedRequests, h.Backends["a"].Requests + h.Backends["a2"].Requests - before);
    }

    private static Cluster Limited(string name, uint maxRequests, uint maxPending)
    {
        var cluster = EdsCluster(name);
        cluster.CircuitBreakers = new CircuitBreakers();
        cluster.CircuitBreakers.Thresholds.Add(new CircuitBreakers.Types.Thresholds
        {
            Priority = RoutingPriority.Default,
            MaxRequests = maxRequests,
            MaxPendingRequests = maxPending,
        });
        return cluster;
    }
}
