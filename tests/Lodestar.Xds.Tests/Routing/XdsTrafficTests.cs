using Envoy.Config.Cluster.V3;
using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;
using Lodestar.Health;
using Lodestar.LoadBalancing;
using Lodestar.Testing;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;
using static Lodestar.Xds.Tests.Infrastructure.XdsTrafficHarness;
using Cluster = Envoy.Config.Cluster.V3.Cluster;
using HealthStatus = Envoy.Config.Core.V3.HealthStatus;

namespace Lodestar.Xds.Tests.Routing;

/// <summary>Requests through the <c>HttpClient</c> handler, routed and balanced by what the fake control plane serves.</summary>
public sealed class XdsTrafficTests
{
    [Fact]
    public async Task Send_WeightedClusters90To10_SplitsTenThousandRequestsWithinTwoPercent()
    {
        // Arrange: a seeded draw, so the split is the same on every run.
        var random = new Random(20261130);
        await using var h = await StartAsync(["stable", "canary"], random: random.NextDouble);
        h.SetRoutes(WeightedRoute("/", ("stable", 90), ("canary", 10)));

        // Act
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < 10_000; i++)
        {
            var instance = await h.GetInstanceAsync("/items");
            counts[instance] = counts.GetValueOrDefault(instance) + 1;
        }

        // Assert: 10 % ± 2 points, and every request answered by one of the two.
        Assert.Equal(10_000, counts.Values.Sum());
        Assert.InRange(counts.GetValueOrDefault("canary"), 800, 1_200);
        Assert.InRange(counts.GetValueOrDefault("stable"), 8_800, 9_200);
    }

    [Fact]
    public async Task Send_RoutesByPathAndHeader_EachRequestReachesItsRoutesCluster()
    {
        await using var h = await StartAsync(["stable", "canary", "admin"]);
        var canaryByHeader = PrefixRoute("/", "canary");
        canaryByHeader.Match.Headers.Add(new HeaderMatcher { Name = "x-canary", StringMatch = new StringMatcher { Exact = "yes" } });
        h.SetRoutes(PrefixRoute("/admin", "admin"), canaryByHeader, PrefixRoute("/", "stable"));

        using var tagged = new HttpRequestMessage(HttpMethod.Get, BaseUrl + "/items");
        tagged.Headers.Add("x-canary", "yes");
        using var taggedResponse = await h.Http.SendAsync(tagged);

        Assert.Equal("admin", await h.GetInstanceAsync("/admin/users"));
        Assert.Equal("stable", await h.GetInstanceAsync("/items"));
        Assert.Equal("canary", taggedResponse.Headers.GetValues("X-Instance").Single());
    }

    [Fact]
    public async Task Send_NoRouteMatches_FailsNamingTheRouteConfigurationAndPath()
    {
        await using var h = await StartAsync(["stable"]);
        h.SetRoutes(PrefixRoute("/api", "stable"));

        var error = await Assert.ThrowsAsync<HttpRequestException>(() => h.Http.GetAsync(BaseUrl + "/other"));

        Assert.Contains("route configuration 'orders-routes'", error.Message, StringComparison.Ordinal);
        Assert.Contains("/other", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, h.Backends["stable"].Requests);
    }

    [Fact]
    public async Task Send_RouteTimeout_EndsTheRequestAtTheRoutesDeadline()
    {
        await using var h = await StartAsync(["slow"]);
        h.Backends["slow"].Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        h.SetRoutes(WithTimeout(PrefixRoute("/", "slow"), TimeSpan.FromMilliseconds(250)));

        var error = await Assert.ThrowsAsync<TaskCanceledException>(() => h.Http.GetAsync(BaseUrl + "/held"));
        h.Backends["slow"].Gate!.SetResult();

        Assert.Contains("deadline of 250 ms", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Send_RouteRetryPolicy5xxTwoRetries_SendsThreeAttemptsAndOnlyOnItsRoute()
    {
        // Arrange: four endpoints in one cluster, all answering 500 (not retried by the client's own policy, which
        // would otherwise allow five attempts).
        await using var h = await StartAsync(["a", "b", "c", "d"], client: o => o.MaxAttempts = 5);
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", Assignment("a", [.. h.Backends.Values.Select(b => ("127.0.0.1", b.Port))]));
        foreach (var backend in h.Backends.Values)
        {
            backend.Status = 500;
        }

        h.SetRoutes(WithRetry(PrefixRoute("/retried", "a"), "5xx", 2), PrefixRoute("/", "a"));
        (await h.Http.GetAsync(BaseUrl + "/warm")).Dispose();
        await WaitForEndpointsAsync(h, 4);
        var before = h.Backends.Values.Sum(b => b.Requests);

        // Act
        using var plain = await h.Http.GetAsync(BaseUrl + "/plain");
        var afterPlain = h.Backends.Values.Sum(b => b.Requests);
        using var retried = await h.Http.GetAsync(BaseUrl + "/retried");
        var afterRetried = h.Backends.Values.Sum(b => b.Requests);

        // Assert
        Assert.Equal(1, afterPlain - before);
        Assert.Equal(3, afterRetried - afterPlain);
        Assert.Equal(500, (int)retried.StatusCode);
    }

    [Fact]
    public async Task Send_Priority0TurnsUnhealthy_FailsOverToPriority1WithoutAFailedRequest()
    {
        await using var h = await StartAsync(["primary", "backup"]);
        var primary = h.Backends["primary"];
        var backup = h.Backends["backup"];
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "primary", Assignment("primary",
            Locality("zone-a", 1, 0, Endpoint("127.0.0.1", primary.Port)), Locality("zone-b", 1, 1, Endpoint("127.0.0.1", backup.Port))));
        h.SetRoutes(PrefixRoute("/", "primary"));
        await Eventually.TrueAsync(async () => await h.GetInstanceAsync("/") == "primary", TimeSpan.FromSeconds(10), "priority 0 takes the traffic");
        for (var i = 0; i < 50; i++)
        {
            Assert.Equal("primary", await h.GetInstanceAsync("/"));
        }

        // Act: the control plane reports priority 0 unhealthy.
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "primary", Assignment("primary",
            Locality("zone-a", 1, 0, Endpoint("127.0.0.1", primary.Port, health: HealthStatus.Unhealthy)), Locality("zone-b", 1, 1, Endpoint("127.0.0.1", backup.Port))));
        await Eventually.TrueAsync(async () => await h.GetInstanceAsync("/") == "backup", TimeSpan.FromSeconds(10), "priority 1 takes over");

        // Assert: every request succeeds and goes to priority 1.
        for (var i = 0; i < 50; i++)
        {
            Assert.Equal("backup", await h.GetInstanceAsync("/"));
        }
    }

    [Fact]
    public async Task Send_ClusterLeastRequestFromCds_KeepsTrafficAwayFromTheBusyBackend()
    {
        // Arrange: one cluster of three backends with LEAST_REQUEST; backend a holds every request it gets.
        await using var h = await StartAsync(["a", "b", "c"]);
        h.Server.SetResource(XdsTypeUrls.Cluster, "a", EdsCluster("a", policy: Cluster.Types.LbPolicy.LeastRequest));
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", Assignment("a", ("127.0.0.1", h.Backends["a"].Port)));
        h.SetRoutes(PrefixRoute("/", "a"));
        var busy = h.Backends["a"];
        busy.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var held = Enumerable.Range(0, 5).Select(_ => h.Http.GetAsync(BaseUrl + "/held")).ToList();
        try
        {
            await Eventually.TrueAsync(() => busy.InFlight == 5, TimeSpan.FromSeconds(10), "five requests are held by backend a");
            h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", Assignment("a", [.. h.Backends.Values.Select(b => ("127.0.0.1", b.Port))]));
            await WaitForEndpointsAsync(h, 3);
            var busyBefore = busy.Requests;

            // Act
            for (var i = 0; i < 300; i++)
            {
                await h.GetInstanceAsync("/");
            }

            // Assert: least request (from CDS) never picks the backend with five in flight; round robin would send it 100.
            Assert.Equal(LoadBalancingPolicies.LeastRequest, h.Services.GetRequiredService<IOptionsMonitor<LoadBalancingOptions>>().Get("a").Policy);
            Assert.Equal(0, busy.Requests - busyBefore);
        }
        finally
        {
            // Release the held requests whatever happened, so that a failure above is the one reported.
            busy.Gate.SetResult();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            foreach (var request in held)
            {
                try
                {
                    (await request.WaitAsync(cts.Token)).Dispose();
                }
                catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
                {
                }
            }
        }
    }

    [Fact]
    public async Task Cds_ClusterSettingsChange_NamedOptionsFollowLive()
    {
        await using var h = await StartAsync(["a"]);
        var cluster = EdsCluster("a", policy: Cluster.Types.LbPolicy.RingHash);
        cluster.RingHashLbConfig = new Cluster.Types.RingHashLbConfig { MinimumRingSize = 64, MaximumRingSize = 4096 };
        cluster.OutlierDetection = new OutlierDetection { Consecutive5Xx = 3, MaxEjectionPercent = 50 };
        h.Server.SetResource(XdsTypeUrls.Cluster, "a", cluster);
        h.SetRoutes(PrefixRoute("/", "a"));
        var loadBalancing = h.Services.GetRequiredService<IOptionsMonitor<LoadBalancingOptions>>();
        var outlier = h.Services.GetRequiredService<IOptionsMonitor<OutlierDetectionOptions>>();
        await Eventually.TrueAsync(async () => await h.GetInstanceAsync("/") == "a", TimeSpan.FromSeconds(10), "traffic flows");
        await Eventually.TrueAsync(() => loadBalancing.Get("a").Policy == LoadBalancingPolicies.RingHash, TimeSpan.FromSeconds(10), "the cluster's policy applies");
        Assert.Equal(64, loadBalancing.Get("a").RingHashMinimumRingSize);
        Assert.Equal(4096, loadBalancing.Get("a").RingHashMaximumRingSize);
        Assert.True(outlier.Get("a").Enabled);
        Assert.Equal(3, outlier.Get("a").ConsecutiveServerErrors);
        Assert.Equal(50, outlier.Get("a").MaxEjectionPercent);

        // Act: the control plane switches the cluster to least request without outlier detection.
        var changed = EdsCluster("a", policy: Cluster.Types.LbPolicy.LeastRequest);
        changed.LeastRequestLbConfig = new Cluster.Types.LeastRequestLbConfig { ChoiceCount = 3 };
        h.Server.SetResource(XdsTypeUrls.Cluster, "a", changed);

        // Assert
        await Eventually.TrueAsync(() => loadBalancing.Get("a").Policy == LoadBalancingPolicies.LeastRequest, TimeSpan.FromSeconds(10), "the new policy applies");
        Assert.Equal(3, loadBalancing.Get("a").ChoiceCount);
        Assert.False(outlier.Get("a").Enabled);
        Assert.Null(loadBalancing.Get("not-an-xds-cluster").Policy);
        Assert.Equal("a", await h.GetInstanceAsync("/"));
    }

    [Fact]
    public async Task Send_InvalidRouteConfigurationPushed_NackedByNameWhileTrafficFlows()
    {
        await using var h = await StartAsync(["stable", "canary"]);
        h.SetRoutes(PrefixRoute("/", "stable"));
        await Eventually.TrueAsync(async () => await h.GetInstanceAsync("/") == "stable", TimeSpan.FromSeconds(10), "traffic flows");

        // Act: weighted clusters whose weights sum to zero are invalid.
        h.SetRoutes(WeightedRoute("/", ("stable", 0), ("canary", 0)));

        // Assert: the client NACKs naming the resource, and the accepted table keeps routing.
        var nack = await h.Server.WaitForRequestAsync(r => r.TypeUrl == XdsTypeUrls.RouteConfiguration && r.IsNack, timeout: TimeSpan.FromSeconds(10));
        Assert.Contains("'orders-routes'", nack.ErrorMessage, StringComparison.Ordinal);
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal("stable", await h.GetInstanceAsync("/"));
        }
    }

    private static async Task WaitForEndpointsAsync(XdsTrafficHarness h, int count)
    {
        var resolver = h.Services.GetRequiredService<Lodestar.Discovery.IEndpointResolver>();
        await Eventually.TrueAsync(async () => (await resolver.GetEndpointsAsync("a", "xds")).Count == count, TimeSpan.FromSeconds(10), $"{count} endpoints");
    }
}
