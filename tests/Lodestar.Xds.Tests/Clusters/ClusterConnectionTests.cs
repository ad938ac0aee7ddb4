using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Google.Protobuf.WellKnownTypes;
using Lodestar.Http;
using Lodestar.Testing;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;
using Cluster = Envoy.Config.Cluster.V3.Cluster;

namespace Lodestar.Xds.Tests.Clusters;

/// <summary>
/// A cluster's <c>connect_timeout</c> and circuit-breaker <c>max_connections</c> become the service's
/// <see cref="ConnectionOptions"/>, which core applies where Lodestar clients connect.
/// </summary>
public sealed class ClusterConnectionTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Cluster_ConnectTimeoutAndMaxConnections_BecomeTheServicesConnectionOptionsAndFollowChanges()
    {
        // Arrange
        await using var h = await XdsTrafficHarness.StartAsync(["a"]);
        h.SetRoutes(PrefixRoute("/", "a"));
        Assert.Equal("a", await h.GetInstanceAsync("/"));
        var monitor = h.Services.GetRequiredService<IOptionsMonitor<ConnectionOptions>>();
        var defaults = monitor.Get("a");

        // Act: the control plane sets both.
        h.Server.SetResource(XdsTypeUrls.Cluster, "a", Connections("a", TimeSpan.FromMilliseconds(1500), maxConnections: 4));
        await Eventually.TrueAsync(() => monitor.Get("a").MaxConnections == 4, s_wait, "the cluster's max_connections reaches the service's options");
        var changed = monitor.Get("a");
        Assert.Equal("a", await h.GetInstanceAsync("/"));

        // Assert: the harness cluster sets a 10 s connect timeout and no circuit breakers (Envoy's 1,024).
        Assert.Equal(TimeSpan.FromSeconds(10), defaults.ConnectTimeout);
        Assert.Equal(1024, defaults.MaxConnections);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), changed.ConnectTimeout);
        Assert.Null(monitor.Get("not-a-cluster").MaxConnections);
    }

    [Fact]
    public async Task Cluster_NoConnectTimeoutAndOutOfRangeValues_EnvoysDefaultAndClampedValuesApply()
    {
        // Arrange
        await using var h = await XdsTrafficHarness.StartAsync(["a"]);
        h.SetRoutes(PrefixRoute("/", "a"));
        Assert.Equal("a", await h.GetInstanceAsync("/"));
        var monitor = h.Services.GetRequiredService<IOptionsMonitor<ConnectionOptions>>();
        var unset = EdsCluster("a");
        unset.ConnectTimeout = null;

        // Act
        h.Server.SetResource(XdsTypeUrls.Cluster, "a", unset);
        await Eventually.TrueAsync(() => monitor.Get("a").ConnectTimeout == TimeSpan.FromSeconds(5), s_wait, "an unset connect_timeout is Envoy's 5 s");
        h.Server.SetResource(XdsTypeUrls.Cluster, "a", Connections("a", TimeSpan.FromMilliseconds(1), maxConnections: 0));
        await Eventually.TrueAsync(() => monitor.Get("a").MaxConnections == 1, s_wait, "max_connections 0 is clamped to 1");

        // Assert: clamped into the options' ranges, so validation never fails on the connect path.
        Assert.Equal(TimeSpan.FromMilliseconds(100), monitor.Get("a").ConnectTimeout);
    }

    [Fact]
    public async Task Send_ClusterAtMaxConnectionsWithItsOneConnectionBusy_NextRequestFailsAsAConnectFailureNamingTheCluster()
    {
        // Arrange: cluster a allows one connection and connects within 200 ms; one request holds that connection.
        await using var h = await XdsTrafficHarness.StartAsync(["a"]);
        h.SetRoutes(PrefixRoute("/", "a"));
        Assert.Equal("a", await h.GetInstanceAsync("/"));
        h.Server.SetResource(XdsTypeUrls.Cluster, "a", Connections("a", TimeSpan.FromMilliseconds(200), maxConnections: 1));
        var monitor = h.Services.GetRequiredService<IOptionsMonitor<ConnectionOptions>>();
        await Eventually.TrueAsync(() => monitor.Get("a").MaxConnections == 1, s_wait, "the cluster's limits apply");
        var backend = h.Backends["a"];
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        backend.Gate = gate;
        var held = h.GetInstanceAsync("/");
        await Eventually.TrueAsync(() => backend.InFlight == 1, s_wait, "the first request holds the connection");

        // Act: the second request needs a second connection, which waits at the cap until the connect timeout.
        var error = await Assert.ThrowsAsync<NoEndpointsException>(() => h.GetInstanceAsync("/").WaitAsync(s_wait));
        backend.Gate = null;
        gate.SetResult();

        // Assert: the wait ends as a connect failure of the only endpoint (no other endpoint to retry on).
        Assert.Equal("a", await held.WaitAsync(s_wait));
        Assert.Contains("connect_failure", error.Message, StringComparison.Ordinal);
        var connectError = Assert.IsType<HttpRequestException>(error.InnerException);
        Assert.Equal(HttpRequestError.ConnectionError, connectError.HttpRequestError);
        var timeout = Assert.IsType<TimeoutException>(connectError.InnerException);
        Assert.Contains("already has 1 connection(s) open to service 'a'", timeout.Message, StringComparison.Ordinal);
        Assert.Contains("connect timeout of 200 ms", timeout.Message, StringComparison.Ordinal);
    }

    private static Cluster Connections(string name, TimeSpan connectTimeout, uint maxConnections)
    {
        var cluster = EdsCluster(name);
        cluster.ConnectTimeout = Duration.FromTimeSpan(connectTimeout);
        cluster.CircuitBreakers = new CircuitBreakers();
        cluster.CircuitBreakers.Thresholds.Add(new CircuitBreakers.Types.Thresholds { Priority = RoutingPriority.Default, MaxConnections = maxConnections });
        return cluster;
    }
}
