using Lodestar.Testing.Tls;
using Lodestar.Testing.Xds;
using Lodestar.Xds.Clusters;
using Lodestar.Xds.Clusters.Internal;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Tests.Infrastructure;

namespace Lodestar.Xds.Tests.Client;

public sealed class XdsClientTlsTests
{
    [Fact]
    public async Task Tls_ServerSignedByTheConfiguredCa_StreamServesResources()
    {
        using var tls = TlsFiles.Create(serverSignedByIntermediate: true);
        var server = await FakeXdsServer.StartAsync(certificate: tls.ServerCertificate, chain: tls.ServerChain);
        await using var h = await ClientHarness.StartAsync(server: server, configure: o => o.BootstrapJson = server.Bootstrap(caCertificateFile: tls.CaCertificatePath));
        server.SetResource(XdsTypeUrls.Cluster, "orders", XdsResources.EdsCluster("orders"));
        var watcher = new RecordingWatcher();

        using var watch = h.Client.Watch(ClusterDecoder.Instance, "orders", watcher);

        Assert.Equal("orders", (await watcher.NextChangeAsync<XdsClusterSettings>()).Name);
    }

    [Fact]
    public async Task Tls_ServerSignedByAnotherCa_StreamFailsWithoutServingAnything()
    {
        using var tls = TlsFiles.Create();
        var server = await FakeXdsServer.StartAsync(certificate: tls.ServerCertificate);
        await using var h = await ClientHarness.StartAsync(server: server, configure: o => o.BootstrapJson = server.Bootstrap(caCertificateFile: tls.OtherCaCertificatePath));
        server.SetResource(XdsTypeUrls.Cluster, "orders", XdsResources.EdsCluster("orders"));
        var watcher = new RecordingWatcher();

        using var watch = h.Client.Watch(ClusterDecoder.Instance, "orders", watcher);

        var error = await watcher.NextAsync();
        Assert.Equal(WatchEventKind.Error, error.Kind);
        Assert.Contains("xDS server", error.Error!.Message, StringComparison.Ordinal);
        Assert.Equal(0, server.StreamsOpened);
    }
}
