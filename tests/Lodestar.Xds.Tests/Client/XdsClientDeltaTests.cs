using Lodestar.Xds.Clusters;
using Lodestar.Xds.Clusters.Internal;
using Lodestar.Xds.Endpoints;
using Lodestar.Xds.Endpoints.Internal;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Tests.Infrastructure;

namespace Lodestar.Xds.Tests.Client;

public sealed class XdsClientDeltaTests
{
    [Fact]
    public async Task Watch_Delta_SubscribesReceivesAndAcksTheNonce()
    {
        await using var h = await ClientHarness.StartAsync(o => o.UseDelta = true);
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "orders", XdsResources.Assignment("orders", ("10.0.0.1", 80)));
        var watcher = new RecordingWatcher();

        using var watch = h.Client.Watch(EndpointAssignmentDecoder.Instance, "orders", watcher);

        Assert.Equal("10.0.0.1", Assert.Single((await watcher.NextChangeAsync<XdsEndpointAssignment>()).RoutableEndpoints).Host);
        var subscribe = await h.Server.WaitForRequestAsync(r => r.IsDelta && r.ResourceNames.Contains("orders"));
        Assert.NotNull(subscribe.NodeId);
        var response = Assert.Single(h.Server.Responses);
        var ack = await h.Server.WaitForRequestAsync(r => r.IsDelta && r.ResponseNonce == response.Nonce);
        Assert.False(ack.IsNack);
        Assert.Empty(ack.ResourceNames);
    }

    [Fact]
    public async Task Delta_InvalidResource_NacksNamingIt()
    {
        await using var h = await ClientHarness.StartAsync(o => o.UseDelta = true);
        var bad = XdsResources.EdsCluster("bad");
        bad.EdsClusterConfig.EdsConfig = new Envoy.Config.Core.V3.ConfigSource { Path = "/etc/eds.yaml" };
        h.Server.SetResource(XdsTypeUrls.Cluster, "bad", bad);
        var watcher = new RecordingWatcher();

        using var watch = h.Client.Watch(ClusterDecoder.Instance, "bad", watcher);

        var nack = await h.Server.WaitForRequestAsync(r => r.IsDelta && r.IsNack);
        Assert.Contains("Cluster 'bad': eds_cluster_config.eds_config must be 'ads' or 'self'", nack.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(h.Server.Responses[^1].Nonce, nack.ResponseNonce);
        Assert.Equal(WatchEventKind.Error, (await watcher.NextAsync()).Kind);
    }

    [Fact]
    public async Task Delta_RemovedResource_WatcherHearsDoesNotExist()
    {
        await using var h = await ClientHarness.StartAsync(o => o.UseDelta = true);
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "orders", XdsResources.Assignment("orders", ("10.0.0.1", 80)));
        var watcher = new RecordingWatcher();
        using var watch = h.Client.Watch(EndpointAssignmentDecoder.Instance, "orders", watcher);
        await watcher.NextChangeAsync<XdsEndpointAssignment>();

        h.Server.RemoveResource(XdsTypeUrls.ClusterLoadAssignment, "orders");

        Assert.Equal(WatchEventKind.DoesNotExist, (await watcher.NextAsync()).Kind);
        Assert.Equal(["orders"], h.Server.Responses[^1].Removed);
    }

    [Fact]
    public async Task Delta_Reconnect_SendsInitialResourceVersions()
    {
        await using var h = await ClientHarness.StartAsync(o => o.UseDelta = true);
        h.Server.SetResource(XdsTypeUrls.Cluster, "orders", XdsResources.EdsCluster("orders"));
        var watcher = new RecordingWatcher();
        using var watch = h.Client.Watch(ClusterDecoder.Instance, "orders", watcher);
        await watcher.NextChangeAsync<XdsClusterSettings>();

        h.Server.ResetStreams();
        await h.AdvancePastTimerAsync(TimeSpan.FromMilliseconds(800));

        var resume = await h.Server.WaitForRequestAsync(r => r.Stream == 2);
        Assert.Equal(["orders"], resume.ResourceNames);
        Assert.Equal("1", resume.InitialVersions["orders"]);
    }

    [Fact]
    public async Task Delta_ServerWithoutDelta_FallsBackToStateOfTheWorld()
    {
        await using var h = await ClientHarness.StartAsync(o => o.UseDelta = true, serverSupportsDelta: false);
        h.Server.SetResource(XdsTypeUrls.Cluster, "orders", XdsResources.EdsCluster("orders"));
        var watcher = new RecordingWatcher();

        using var watch = h.Client.Watch(ClusterDecoder.Instance, "orders", watcher);

        Assert.Equal("orders", (await watcher.NextChangeAsync<XdsClusterSettings>()).Name);
        Assert.False(h.Client.UsesDelta);
        Assert.Contains(h.Server.Requests, r => !r.IsDelta && r.TypeUrl == XdsTypeUrls.Cluster);
    }

    [Fact]
    public async Task Delta_Unwatch_SendsUnsubscribe()
    {
        await using var h = await ClientHarness.StartAsync(o => o.UseDelta = true);
        h.Server.SetResource(XdsTypeUrls.Cluster, "orders", XdsResources.EdsCluster("orders"));
        var watcher = new RecordingWatcher();
        var watch = h.Client.Watch(ClusterDecoder.Instance, "orders", watcher);
        await watcher.NextChangeAsync<XdsClusterSettings>();

        watch.Dispose();

        var request = await h.Server.WaitForRequestAsync(r => r.Unsubscribed.Contains("orders"));
        Assert.True(request.IsDelta);
    }
}
