using Lodestar.Kubernetes.Api.Internal;
using Lodestar.Kubernetes.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Kubernetes;
using Lodestar.Testing.Tls;

namespace Lodestar.Kubernetes.Tests.Api;

/// <summary>The EndpointSlice source against the fake API server with a kubeconfig user whose token comes from an exec plugin.</summary>
public sealed class ExecCredentialClientTests : IAsyncLifetime
{
    private static readonly TimeSpan s_wait = SourceHarness.Wait;
    private readonly TempDirectory _directory = new();
    private FakeKubernetesApiServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await FakeKubernetesApiServer.StartAsync();
        _server.Token = "exec-token-first-1111";
        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-a", "orders", 8080, FakeEndpoint.ReadyAt("10.0.0.1")));
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _directory.Dispose();
    }

    private string Kubeconfig(string script, string extra = "")
        => _server.WriteKubeconfig(_directory.Path, user: $"    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {script}\n      interactiveMode: IfAvailable{extra}");

    [Fact]
    public async Task RunAsync_ExecPluginToken_ListsAndWatchesWithIt()
    {
        var script = ExecPlugins.WriteFilePrinter(_directory, ExecPlugins.Credential(_server.Token));
        await using var harness = await SourceHarness.StartAsync(_server, configure: o => o.KubeconfigPath = Kubeconfig(script));

        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080") && _server.OpenWatches == 1, s_wait, "listed and watching with the plugin's token");

        Assert.Empty(harness.Observer.Errors);
        Assert.Equal(1, ExecPlugins.Runs(_directory));
        Assert.DoesNotContain(_server.Requests, r => r.StartsWith("REJECTED", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunAsync_TokenRevoked_PluginRunsAgainAndTheRequestIsRetried()
    {
        var script = ExecPlugins.WriteFilePrinter(_directory, ExecPlugins.Credential(_server.Token));
        await using var harness = await SourceHarness.StartAsync(_server, configure: o => o.KubeconfigPath = Kubeconfig(script));
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080") && _server.OpenWatches == 1, s_wait, "listed with the first token");

        // The server stops accepting the first token; the plugin now hands out the second.
        _server.Token = "exec-token-second-2222";
        _directory.Write("credential.json", ExecPlugins.Credential(_server.Token));
        _server.EndWatches(abort: false);
        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-b", "orders", 8080, FakeEndpoint.ReadyAt("10.0.0.2")));

        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080", "10.0.0.2:8080"), s_wait, "the re-watch succeeds with the new token");
        Assert.Equal(2, ExecPlugins.Runs(_directory));
        Assert.Single(_server.Requests, r => r.StartsWith("REJECTED 401", StringComparison.Ordinal));
        Assert.Empty(harness.Observer.Errors);
    }

    [Fact]
    public async Task RunAsync_ClientCertificateRotated_NewConnectionsPresentTheNewCertificate()
    {
        using var authority = TestCertificates.CreateAuthority();
        using var first = TestCertificates.CreateClient(authority, "exec-client-one");
        using var second = TestCertificates.CreateClient(authority, "exec-client-two");
        _server.Token = "no-token-is-sent";
        _server.AcceptedClientCertificate = first.Thumbprint;
        var script = ExecPlugins.WriteFilePrinter(_directory, CertificateCredential(first));
        await using var harness = await SourceHarness.StartAsync(_server, configure: o => o.KubeconfigPath = Kubeconfig(script));
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080") && _server.OpenWatches == 1, s_wait, "listed and watching with the first certificate");
        Assert.All(_server.ClientCertificateSubjects, s => Assert.Equal("CN=exec-client-one", s));

        // The server now trusts only the second certificate, which the plugin hands out from now on.
        _server.AcceptedClientCertificate = second.Thumbprint;
        _directory.Write("credential.json", CertificateCredential(second));
        _server.EndWatches(abort: true);
        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-b", "orders", 8080, FakeEndpoint.ReadyAt("10.0.0.2")));

        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080", "10.0.0.2:8080"), s_wait, "the re-watch succeeds with the second certificate");
        Assert.Equal("CN=exec-client-two", _server.ClientCertificateSubjects.Last());
        Assert.Equal(2, ExecPlugins.Runs(_directory));
        Assert.Empty(harness.Observer.Errors);
    }

    private static string CertificateCredential(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate)
        => ExecPlugins.Credential(null, certificatePem: certificate.ExportCertificatePem(), keyPem: TestCertificates.ExportPrivateKeyPem(certificate));

    [Fact]
    public async Task RunAsync_PluginSlowerThanTheRequestDeadline_ListStillSucceeds()
    {
        // The plugin answers only once the test lets it, after the clock has passed the API request deadline.
        var gate = Path.Combine(_directory.Path, "go");
        _directory.Write("credential.json", ExecPlugins.Credential(_server.Token));
        var script = ExecPlugins.WriteScript(_directory, "slow.sh",
            $"while [ ! -f '{gate}' ]; do sleep 0.05; done\ncat '{_directory.Path}/credential.json'");
        var clock = new RecordingTimeProvider();
        await using var harness = await SourceHarness.StartAsync(_server, configure: o => o.KubeconfigPath = Kubeconfig(script), timeProvider: clock, random: () => 0.5);

        Assert.Equal(ExecCredentialPlugin.DefaultTimeout, await clock.NextFiniteTimerAsync());
        clock.Advance(KubernetesApiClient.RequestTimeout + TimeSpan.FromSeconds(1));
        File.WriteAllText(gate, "");

        Assert.Equal(KubernetesApiClient.RequestTimeout, await clock.NextFiniteTimerAsync());
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080"), s_wait, "the list goes out once the plugin answers");
        Assert.Empty(harness.Observer.Errors);
    }

    [Fact]
    public async Task RunAsync_PluginFails_ErrorNamesPluginAndContextAndSourceRetries()
    {
        var script = ExecPlugins.WriteScript(_directory, "broken.sh", $"echo run >> '{_directory.Path}/runs'\necho 'credentials expired; run login' >&2\nexit 1");
        await using var harness = await SourceHarness.StartAsync(_server, configure: o => o.KubeconfigPath = Kubeconfig(script));

        await Eventually.TrueAsync(() => harness.Observer.Errors.Count >= 2, s_wait, "the failures are reported and retried");

        var error = harness.Observer.Errors[0].Message;
        Assert.Contains($"exec credential plugin '{script}'", error, StringComparison.Ordinal);
        Assert.Contains("kubeconfig context 'fake'", error, StringComparison.Ordinal);
        Assert.Contains("exited with code 1: credentials expired; run login", error, StringComparison.Ordinal);
        Assert.Contains("service 'orders' in namespace 'shop'", error, StringComparison.Ordinal);
        Assert.Empty(_server.Requests);
        Assert.True(ExecPlugins.Runs(_directory) >= 2);
    }
}
