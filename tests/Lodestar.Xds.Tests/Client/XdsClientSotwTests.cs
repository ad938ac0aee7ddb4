using Envoy.Config.Cluster.V3;
using Google.Protobuf;
using Lodestar.Xds.Client.Internal;
using Lodestar.Xds.Clusters;
using Lodestar.Xds.Clusters.Internal;
using Lodestar.Xds.Endpoints;
using Lodestar.Xds.Endpoints.Internal;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Tests.Infrastructure;
using Cluster = Envoy.Config.Cluster.V3.Cluster;

namespace Lodestar.Xds.Tests.Client;

public sealed class XdsClientSotwTests
{
    [Fact]
    public async Task Watch_ClusterServed_AcksWithTheResponseVersionAndNonce()
    {
        await using var h = await ClientHarness.StartAsync();
        h.Server.SetResource(XdsTypeUrls.Cluster, "orders", XdsResources.EdsCluster("orders", policy: Cluster.Types.LbPolicy.LeastRequest));
        var watcher = new RecordingWatcher();

        using var watch = h.Client.Watch(ClusterDecoder.Instance, "orders", watcher);

        var cluster = await watcher.NextChangeAsync<XdsClusterSettings>();
        Assert.Equal("least-request", cluster.Policy);
        var first = await h.Server.WaitForRequestAsync(r => r.TypeUrl == XdsTypeUrls.Cluster);
        Assert.Equal(["orders"], first.ResourceNames);
        Assert.Equal(string.Empty, first.VersionInfo);
        Assert.Equal(string.Empty, first.ResponseNonce);
        Assert.NotNull(first.NodeId);
        var response = Assert.Single(h.Server.Responses);
        var ack = await h.Server.WaitForRequestAsync(r => r.ResponseNonce == response.Nonce);
        Assert.Equal(response.VersionInfo, ack.VersionInfo);
        Assert.False(ack.IsNack);
        Assert.Equal(["orders"], ack.ResourceNames);
    }

    [Fact]
    public async Task Push_NoncePrefixChanges_AckEchoesTheNewNonce()
    {
        await using var h = await ClientHarness.StartAsync();
        h.Server.SetResource(XdsTypeUrls.Cluster, "orders", XdsResources.EdsCluster("orders"));
        var watcher = new RecordingWatcher();
        using var watch = h.Client.Watch(ClusterDecoder.Instance, "orders", watcher);
        await watcher.NextChangeAsync<XdsClusterSettings>();

        h.Server.NoncePrefix = "other-";
        h.Server.SetResource(XdsTypeUrls.Cluster, "orders", XdsResources.EdsCluster("orders", policy: Cluster.Types.LbPolicy.RingHash));

        Assert.Equal("ring-hash", (await watcher.NextChangeAsync<XdsClusterSettings>()).Policy);
        var ack = await h.Server.WaitForRequestAsync(r => r.ResponseNonce.StartsWith("other-", StringComparison.Ordinal));
        Assert.Equal("2", ack.VersionInfo);
        Assert.False(ack.IsNack);
    }

    [Fact]
    public async Task Response_OneInvalidCluster_NacksNamingItAndAcceptsTheOthers()
    {
        await using var h = await ClientHarness.StartAsync();
        var bad = XdsResources.EdsCluster("bad");
        bad.LbPolicy = Cluster.Types.LbPolicy.ClusterProvided;
        h.Server.SetResources(XdsTypeUrls.Cluster, [("good", XdsResources.EdsCluster("good")), ("bad", bad)]);
        var good = new RecordingWatcher();
        var rejected = new RecordingWatcher();

        using var w1 = h.Client.Watch(ClusterDecoder.Instance, "good", good);
        using var w2 = h.Client.Watch(ClusterDecoder.Instance, "bad", rejected);

        Assert.Equal("good", (await good.NextChangeAsync<XdsClusterSettings>()).Name);
        var error = await rejected.NextAsync();
        Assert.Equal(WatchEventKind.Error, error.Kind);
        Assert.Contains("Cluster 'bad'", error.Error!.Message, StringComparison.Ordinal);
        var nack = await h.Server.WaitForRequestAsync(r => r.IsNack);
        Assert.Equal(3, nack.ErrorCode);
        Assert.Contains("Cluster 'bad': lb_policy ClusterProvided is not supported", nack.ErrorMessage, StringComparison.Ordinal);
        Assert.DoesNotContain("'good'", nack.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(string.Empty, nack.VersionInfo);
        Assert.Equal(h.Server.Responses[^1].Nonce, nack.ResponseNonce);
    }

    [Fact]
    public async Task Update_InvalidAfterValid_LastGoodStaysAndNackCarriesTheAcceptedVersion()
    {
        await using var h = await ClientHarness.StartAsync();
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "orders", XdsResources.Assignment("orders", ("10.0.0.1", 8080)));
        var watcher = new RecordingWatcher();
        using var watch = h.Client.Watch(EndpointAssignmentDecoder.Instance, "orders", watcher);
        var first = await watcher.NextChangeAsync<XdsEndpointAssignment>();
        await h.Server.WaitForRequestAsync(r => r.VersionInfo == "1" && !r.IsNack);

        // Port 70000 is invalid: the update is rejected.
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "orders", XdsResources.Assignment("orders", ("10.0.0.2", 70000)));

        var error = await watcher.NextAsync();
        Assert.Equal(WatchEventKind.Error, error.Kind);
        Assert.Contains("last accepted version stays in force", error.Error!.Message, StringComparison.Ordinal);
        var nack = await h.Server.WaitForRequestAsync(r => r.IsNack);
        Assert.Equal("1", nack.VersionInfo);
        Assert.Contains("ClusterLoadAssignment 'orders'", nack.ErrorMessage, StringComparison.Ordinal);
        Assert.Contains("port 70000", nack.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal("10.0.0.1", Assert.Single(first.RoutableEndpoints).Host);

        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "orders", XdsResources.Assignment("orders", ("10.0.0.3", 8080)));
        var next = await watcher.NextChangeAsync<XdsEndpointAssignment>();
        Assert.Equal("10.0.0.3", Assert.Single(next.RoutableEndpoints).Host);
        var ack = await h.Server.WaitForRequestAsync(r => r.VersionInfo == "3" && !r.IsNack);
        Assert.Equal(h.Server.Responses[^1].Nonce, ack.ResponseNonce);
    }

    [Fact]
    public async Task Response_UndecodableBytes_NacksAndKeepsTheStream()
    {
        await using var h = await ClientHarness.StartAsync();
        var watcher = new RecordingWatcher();
        using var watch = h.Client.Watch(ClusterDecoder.Instance, "orders", watcher);
        await h.Server.WaitForRequestAsync(r => r.TypeUrl == XdsTypeUrls.Cluster);

        h.Server.SetRawResource(XdsTypeUrls.Cluster, "orders", ByteString.CopyFrom(0xFF, 0xFF, 0xFF));

        var nack = await h.Server.WaitForRequestAsync(r => r.IsNack);
        Assert.Contains("could not be decoded", nack.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(1, h.Server.StreamsOpened);
    }

    [Fact]
    public async Task Response_ClusterRemoved_WatcherHearsDoesNotExist()
    {
        await using var h = await ClientHarness.StartAsync();
        h.Server.SetResources(XdsTypeUrls.Cluster, [("a", XdsResources.EdsCluster("a")), ("b", XdsResources.EdsCluster("b"))]);
        var a = new RecordingWatcher();
        var b = new RecordingWatcher();
        using var wa = h.Client.Watch(ClusterDecoder.Instance, "a", a);
        using var wb = h.Client.Watch(ClusterDecoder.Instance, "b", b);
        await a.NextChangeAsync<XdsClusterSettings>();
        await b.NextChangeAsync<XdsClusterSettings>();

        h.Server.RemoveResource(XdsTypeUrls.Cluster, "a");

        Assert.Equal(WatchEventKind.DoesNotExist, (await a.NextAsync()).Kind);
        var ack = await h.Server.WaitForRequestAsync(r => r.VersionInfo == "2");
        Assert.False(ack.IsNack);
        Assert.Equal(0, b.Pending);
    }

    [Fact]
    public async Task Response_ClusterMissingWithIgnoreResourceDeletion_KeepsIt()
    {
        await using var h = await ClientHarness.StartAsync(serverFeatures: ["xds_v3", "ignore_resource_deletion"]);
        h.Server.SetResource(XdsTypeUrls.Cluster, "a", XdsResources.EdsCluster("a"));
        var a = new RecordingWatcher();
        using var wa = h.Client.Watch(ClusterDecoder.Instance, "a", a);
        await a.NextChangeAsync<XdsClusterSettings>();

        h.Server.RemoveResource(XdsTypeUrls.Cluster, "a");
        await h.Server.WaitForRequestAsync(r => r.VersionInfo == "2" && !r.IsNack);
        h.Server.SetResource(XdsTypeUrls.Cluster, "a", XdsResources.EdsCluster("a", policy: Cluster.Types.LbPolicy.Maglev));

        // The next event is the new version: the removal was not passed on.
        var next = await a.NextAsync();
        Assert.Equal(WatchEventKind.Changed, next.Kind);
        Assert.Equal("maglev", ((XdsClusterSettings)next.Resource!).Policy);
        Assert.Contains(h.Logs.Entries, e => e.EventId.Name == "XdsDeletionIgnored");
    }

    [Fact]
    public async Task Response_EndpointsMissingFromResponse_AreNotRemoved()
    {
        await using var h = await ClientHarness.StartAsync();
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", XdsResources.Assignment("a", ("10.0.0.1", 80)));
        var a = new RecordingWatcher();
        using var wa = h.Client.Watch(EndpointAssignmentDecoder.Instance, "a", a);
        await a.NextChangeAsync<XdsEndpointAssignment>();

        // For EDS a state-of-the-world response need not carry every resource: removing one says nothing.
        h.Server.RemoveResource(XdsTypeUrls.ClusterLoadAssignment, "a");
        await h.Server.WaitForRequestAsync(r => r.VersionInfo == "2" && !r.IsNack);
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", XdsResources.Assignment("a", ("10.0.0.2", 80)));

        var next = await a.NextAsync();
        Assert.Equal(WatchEventKind.Changed, next.Kind);
    }

    [Fact]
    public async Task Watch_ResourceNeverSent_DoesNotExistAfterTheTimeoutOnTheClock()
    {
        await using var h = await ClientHarness.StartAsync(o => o.ResourceDoesNotExistTimeout = TimeSpan.FromSeconds(15));
        var watcher = new RecordingWatcher();

        using var watch = h.Client.Watch(EndpointAssignmentDecoder.Instance, "missing", watcher);
        await h.Server.WaitForRequestAsync(r => r.ResourceNames.Contains("missing"));
        await h.AdvancePastTimerAsync(TimeSpan.FromSeconds(15));

        Assert.Equal(WatchEventKind.DoesNotExist, (await watcher.NextAsync()).Kind);
        Assert.Contains(h.Logs.Entries, e => e.EventId.Name == "XdsResourceDoesNotExist" && e.Message.Contains("missing", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Watch_ResourceArrivesLate_DoesNotExistThenChanged()
    {
        await using var h = await ClientHarness.StartAsync();
        var watcher = new RecordingWatcher();
        using var watch = h.Client.Watch(ClusterDecoder.Instance, "late", watcher);
        await h.Server.WaitForRequestAsync(r => r.ResourceNames.Contains("late"));
        await h.AdvancePastTimerAsync(XdsOptions.DefaultResourceDoesNotExistTimeout);
        Assert.Equal(WatchEventKind.DoesNotExist, (await watcher.NextAsync()).Kind);

        h.Server.SetResource(XdsTypeUrls.Cluster, "late", XdsResources.EdsCluster("late"));

        Assert.Equal("late", (await watcher.NextChangeAsync<XdsClusterSettings>()).Name);
    }

    [Fact]
    public async Task Unwatch_LastWatcher_UnsubscribesTheName()
    {
        await using var h = await ClientHarness.StartAsync();
        h.Server.SetResources(XdsTypeUrls.Cluster, [("a", XdsResources.EdsCluster("a")), ("b", XdsResources.EdsCluster("b"))]);
        var a = new RecordingWatcher();
        var wa = h.Client.Watch(ClusterDecoder.Instance, "a", a);
        using var wb = h.Client.Watch(ClusterDecoder.Instance, "b", new RecordingWatcher());
        await a.NextChangeAsync<XdsClusterSettings>();
        var mark = h.Server.Requests.Count;

        wa.Dispose();

        var request = await h.Server.WaitForRequestAsync(r => r.ResourceNames.SequenceEqual(["b"]), skip: mark);
        Assert.Equal(XdsTypeUrls.Cluster, request.TypeUrl);
    }

    [Fact]
    public async Task Watch_Wildcard_RequestsEveryClusterAndDeliversTheSet()
    {
        await using var h = await ClientHarness.StartAsync();
        h.Server.SetResources(XdsTypeUrls.Cluster, [("a", XdsResources.EdsCluster("a")), ("b", XdsResources.EdsCluster("b"))]);
        var watcher = new RecordingWatcher();

        using var watch = h.Client.Watch(ClusterDecoder.Instance, XdsClient.Wildcard, watcher);

        var set = await watcher.NextChangeAsync<Lodestar.Xds.Client.XdsResourceSet>();
        Assert.Equal(["a", "b"], set.Resources.Keys.Order(StringComparer.Ordinal));
        var request = await h.Server.WaitForRequestAsync(r => r.TypeUrl == XdsTypeUrls.Cluster);
        Assert.Empty(request.ResourceNames);
    }
}
