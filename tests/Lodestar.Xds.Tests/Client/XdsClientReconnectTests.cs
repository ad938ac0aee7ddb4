using Grpc.Core;
using Lodestar.Xds.Clusters;
using Lodestar.Xds.Clusters.Internal;
using Lodestar.Xds.Endpoints;
using Lodestar.Xds.Endpoints.Internal;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Tests.Infrastructure;

namespace Lodestar.Xds.Tests.Client;

public sealed class XdsClientReconnectTests
{
    [Fact]
    public async Task StreamReset_Reconnects_ResubscribesEveryTypeWithTheLastAcceptedVersion()
    {
        await using var h = await ClientHarness.StartAsync();
        h.Server.SetResource(XdsTypeUrls.Cluster, "orders", XdsResources.EdsCluster("orders"));
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "orders", XdsResources.Assignment("orders", ("10.0.0.1", 80)));
        var clusters = new RecordingWatcher();
        var endpoints = new RecordingWatcher();
        using var w1 = h.Client.Watch(ClusterDecoder.Instance, "orders", clusters);
        using var w2 = h.Client.Watch(EndpointAssignmentDecoder.Instance, "orders", endpoints);
        await clusters.NextChangeAsync<XdsClusterSettings>();
        await endpoints.NextChangeAsync<XdsEndpointAssignment>();
        await h.Server.WaitForRequestAsync(r => r.TypeUrl == XdsTypeUrls.ClusterLoadAssignment && r.VersionInfo == "1");

        h.Server.ResetStreams();
        await h.AdvancePastTimerAsync(TimeSpan.FromMilliseconds(800));

        var cds = await h.Server.WaitForRequestAsync(r => r.Stream == 2 && r.TypeUrl == XdsTypeUrls.Cluster);
        var eds = await h.Server.WaitForRequestAsync(r => r.Stream == 2 && r.TypeUrl == XdsTypeUrls.ClusterLoadAssignment);
        Assert.Equal(["orders"], cds.ResourceNames);
        Assert.Equal("1", cds.VersionInfo);
        Assert.Equal(string.Empty, cds.ResponseNonce);
        Assert.Equal(["orders"], eds.ResourceNames);
        Assert.Equal("1", eds.VersionInfo);
        Assert.Equal(WatchEventKind.Error, (await clusters.NextAsync()).Kind);
    }

    [Fact]
    public async Task ServerDown_RetriesFollowTheBackoffOptions()
    {
        await using var h = await ClientHarness.StartAsync(o =>
        {
            o.Backoff.InitialDelay = TimeSpan.FromMilliseconds(500);
            o.Backoff.MaxDelay = TimeSpan.FromSeconds(2);
        });
        await h.Server.StopAsync();
        var watcher = new RecordingWatcher();

        using var watch = h.Client.Watch(ClusterDecoder.Instance, "orders", watcher);

        // Ceiling of each delay (the draw is fixed at 1.0): 500 ms, 1 s, 2 s, then capped at 2 s. (Each attempt also
        // arms a does-not-exist timer when it writes its request, and stops it when the stream fails.)
        Assert.Equal(TimeSpan.FromMilliseconds(500), await NextNonDoesNotExistTimerAsync(h));
        Assert.Equal(WatchEventKind.Error, (await watcher.NextAsync()).Kind);
        h.Clock.Advance(TimeSpan.FromMilliseconds(500));
        Assert.Equal(TimeSpan.FromSeconds(1), await NextNonDoesNotExistTimerAsync(h));
        h.Clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(TimeSpan.FromSeconds(2), await NextNonDoesNotExistTimerAsync(h));
        h.Clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(TimeSpan.FromSeconds(2), await NextNonDoesNotExistTimerAsync(h));
        Assert.Equal(WatchEventKind.Error, (await watcher.NextAsync()).Kind);
        Assert.Equal(0, h.Server.StreamsOpened);
    }

    [Fact]
    public async Task ServerAway_ComesBack_ClientReconnectsAndResetsBackoffAfterAResponse()
    {
        await using var h = await ClientHarness.StartAsync();
        h.Server.SetResource(XdsTypeUrls.Cluster, "orders", XdsResources.EdsCluster("orders"));
        var watcher = new RecordingWatcher();
        using var watch = h.Client.Watch(ClusterDecoder.Instance, "orders", watcher);
        await watcher.NextChangeAsync<XdsClusterSettings>();

        await h.Server.StopAsync();
        await h.AdvancePastTimerAsync(TimeSpan.FromMilliseconds(800));
        await h.AdvancePastTimerAsync(TimeSpan.FromMilliseconds(1600));

        // The third attempt has failed once its delay is armed; only then does the server come back.
        Assert.Equal(TimeSpan.FromMilliseconds(3200), await NextNonDoesNotExistTimerAsync(h));
        await h.Server.StartAgainAsync();
        h.Server.SetResource(XdsTypeUrls.Cluster, "orders", XdsResources.EdsCluster("orders", policy: Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.RingHash));
        h.Clock.Advance(TimeSpan.FromMilliseconds(3200));

        Assert.Equal("ring-hash", (await watcher.NextChangeAsync<XdsClusterSettings>()).Policy);

        // After a response the next failure starts the backoff over.
        h.Server.ResetStreams();
        Assert.Equal(TimeSpan.FromMilliseconds(800), await NextNonDoesNotExistTimerAsync(h));
    }

    [Fact]
    public async Task Server_ResetsInsteadOfResponding_ClientReconnectsAndGetsTheResource()
    {
        await using var h = await ClientHarness.StartAsync();
        h.Server.SetResource(XdsTypeUrls.Cluster, "orders", XdsResources.EdsCluster("orders"));
        h.Server.ResetOnNextResponse = true;
        var watcher = new RecordingWatcher();

        using var watch = h.Client.Watch(ClusterDecoder.Instance, "orders", watcher);
        await h.AdvancePastTimerAsync(TimeSpan.FromMilliseconds(800));

        Assert.Equal("orders", (await watcher.NextChangeAsync<XdsClusterSettings>()).Name);
        Assert.Equal(2, h.Server.StreamsOpened);
    }

    [Fact]
    public async Task Server_Silent_StreamIsReopenedAfterTheStallTimeout()
    {
        await using var h = await ClientHarness.StartAsync(o =>
        {
            o.StallTimeout = TimeSpan.FromSeconds(30);
            o.ResourceDoesNotExistTimeout = TimeSpan.FromMinutes(1);
        });
        h.Server.Silent = true;
        h.Server.SetResource(XdsTypeUrls.Cluster, "orders", XdsResources.EdsCluster("orders"));
        var watcher = new RecordingWatcher();
        using var watch = h.Client.Watch(ClusterDecoder.Instance, "orders", watcher);
        await h.Server.WaitForRequestAsync(r => r.TypeUrl == XdsTypeUrls.Cluster);

        h.Clock.Advance(TimeSpan.FromSeconds(30));
        var stalled = await watcher.NextAsync();
        Assert.Equal(WatchEventKind.Error, stalled.Kind);
        Assert.Contains("answered nothing for 30 s", stalled.Error!.Message, StringComparison.Ordinal);
        h.Server.Silent = false;
        await h.AdvancePastTimerAsync(TimeSpan.FromMilliseconds(800));

        Assert.Equal("orders", (await watcher.NextChangeAsync<XdsClusterSettings>()).Name);
        Assert.Equal(2, h.Server.StreamsOpened);
    }

    [Fact]
    public async Task TokenFile_RotatedBetweenStreams_EachStreamSendsTheCurrentToken()
    {
        var tokenFile = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(tokenFile, "first-token-value\n");
            await using var h = await ClientHarness.StartAsync(tokenFile: tokenFile);
            h.Server.SetResource(XdsTypeUrls.Cluster, "orders", XdsResources.EdsCluster("orders"));
            var watcher = new RecordingWatcher();
            using var watch = h.Client.Watch(ClusterDecoder.Instance, "orders", watcher);
            await watcher.NextChangeAsync<XdsClusterSettings>();

            await File.WriteAllTextAsync(tokenFile, "second-token-value\n");
            h.Server.ResetStreams();
            await h.AdvancePastTimerAsync(TimeSpan.FromMilliseconds(800));
            await h.Server.WaitForRequestAsync(r => r.Stream == 2);

            Assert.Equal(["Bearer first-token-value", "Bearer second-token-value"], h.Server.Authorizations);
            Assert.DoesNotContain("token-value", h.Logs.AllText, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(tokenFile);
        }
    }

    [Fact]
    public async Task ServerEchoesTheToken_ErrorsAndLogsMaskIt()
    {
        var tokenFile = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(tokenFile, "s3cr3t-xds-token");
            await using var h = await ClientHarness.StartAsync(tokenFile: tokenFile);
            h.Server.RejectStreams = new Status(StatusCode.Unauthenticated, "token s3cr3t-xds-token is not valid for this node");
            var watcher = new RecordingWatcher();

            using var watch = h.Client.Watch(ClusterDecoder.Instance, "orders", watcher);

            var error = await watcher.NextAsync();
            Assert.Equal(WatchEventKind.Error, error.Kind);
            Assert.Contains("Unauthenticated", error.Error!.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("s3cr3t-xds-token", error.Error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("s3cr3t-xds-token", h.Logs.AllText, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(tokenFile);
        }
    }

    private static async Task<TimeSpan> NextNonDoesNotExistTimerAsync(ClientHarness h)
    {
        while (true)
        {
            var due = await h.Clock.NextFiniteTimerAsync();
            if (due != XdsOptions.DefaultResourceDoesNotExistTimeout)
            {
                return due;
            }
        }
    }
}
