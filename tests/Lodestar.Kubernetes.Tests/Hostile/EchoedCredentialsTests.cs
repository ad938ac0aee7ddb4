using System.Diagnostics;
using Lodestar.Kubernetes.Api.Internal;
using Lodestar.Kubernetes.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Kubernetes;
using Lodestar.Testing.Tls;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Kubernetes.Tests.Hostile;

/// <summary>
/// An API server (or a proxy in front of it) that echoes the request's Authorization header and bare token in every
/// error text: the token must reach no log line (Trace included), no error and no CLI output, on every path.
/// </summary>
public sealed class EchoedCredentialsTests : IAsyncLifetime
{
    private const string Secret = "s3cret-token-7f1c9a2b";
    private static readonly TimeSpan s_wait = SourceHarness.Wait;
    private readonly TempDirectory _directory = new();
    private FakeKubernetesApiServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await FakeKubernetesApiServer.StartAsync();
        _server.Token = Secret;
        _server.EchoCredentials = true;
        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-a", "orders", 8080, FakeEndpoint.ReadyAt("10.0.0.1")));
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _directory.Dispose();
    }

    private static void AssertNoSecret(SourceHarness harness, params string[] secrets)
    {
        var text = string.Join("\n", harness.Observer.Errors.Select(e => e.ToString())) + "\n" + harness.Logs.AllText;
        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
        }
    }

    private async Task<Exception> FirstErrorAsync(SourceHarness harness, string because)
    {
        await Eventually.TrueAsync(() => harness.Observer.Errors.Count > 0, s_wait, because);
        return harness.Observer.Errors[0];
    }

    [Fact]
    public async Task RunAsync_401EchoingTheWrongToken_TokenInNoErrorOrLog()
    {
        const string Wrong = "wrong-token-9c8d7e6f";
        await using var harness = await SourceHarness.StartAsync(_server, token: Wrong);

        var error = await FirstErrorAsync(harness, "the 401 is reported");

        Assert.Contains("401", error.Message, StringComparison.Ordinal);
        Assert.Contains(_server.Url.GetLeftPart(UriPartial.Authority), error.Message, StringComparison.Ordinal);
        Assert.Contains(_server.Requests, r => r.StartsWith("REJECTED 401", StringComparison.Ordinal));
        AssertNoSecret(harness, Wrong);
    }

    [Theory]
    [InlineData(403)]
    [InlineData(500)]
    public async Task RunAsync_ListErrorEchoingTheToken_ErrorKeepsTheMessageWithoutTheToken(int status)
    {
        _server.FailNext(FakeRequestKind.List, status);
        await using var harness = await SourceHarness.StartAsync(_server);

        var error = await FirstErrorAsync(harness, "the failed list is reported");
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080"), s_wait, "the retry lists");

        Assert.Contains(status.ToString(System.Globalization.CultureInfo.InvariantCulture), error.Message, StringComparison.Ordinal);
        Assert.Contains("request had Authorization: Bearer ***", error.Message, StringComparison.Ordinal);
        Assert.Contains("service 'orders' in namespace 'shop'", error.Message, StringComparison.Ordinal);
        AssertNoSecret(harness, Secret);
    }

    [Fact]
    public async Task RunAsync_WatchRefusedWith500EchoingTheToken_TokenInNoErrorOrLog()
    {
        _server.FailNext(FakeRequestKind.Watch, 500);
        await using var harness = await SourceHarness.StartAsync(_server);

        var error = await FirstErrorAsync(harness, "the refused watch is reported");
        await Eventually.TrueAsync(() => _server.OpenWatches == 1, s_wait, "the retry watches");

        Assert.Contains("500", error.Message, StringComparison.Ordinal);
        Assert.True(harness.Observer.Has("10.0.0.1:8080"), "the listed set stays in force");
        AssertNoSecret(harness, Secret);
    }

    [Fact]
    public async Task RunAsync_WatchErrorEventEchoingTheToken_TokenInNoErrorOrLog()
    {
        await using var harness = await SourceHarness.StartAsync(_server);
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080") && _server.OpenWatches == 1, s_wait, "the source watches");

        _server.SendErrorEvent(500, "internal error");

        var error = await FirstErrorAsync(harness, "the ERROR event is reported");
        Assert.Contains("500", error.Message, StringComparison.Ordinal);
        Assert.Contains("internal error", error.Message, StringComparison.Ordinal);
        await Eventually.TrueAsync(() => _server.OpenWatches == 1 && _server.Requests.Count(r => r.StartsWith("WATCH", StringComparison.Ordinal)) == 2, s_wait, "the source watches again");
        AssertNoSecret(harness, Secret);
    }

    [Fact]
    public async Task RunAsync_TlsFailureQuotingACertificateThatCarriesTheToken_TokenInNoErrorOrLog()
    {
        await using var server = await FakeKubernetesApiServer.StartAsync(certificateSubject: "kube-apiserver " + Secret);
        server.Token = Secret;
        using var otherAuthority = TestCertificates.CreateAuthority("Some Other CA");
        var kubeconfig = server.WriteKubeconfig(_directory.Path, caPem: otherAuthority.ExportCertificatePem());
        await using var harness = await SourceHarness.StartAsync(server, configure: o => o.KubeconfigPath = kubeconfig);

        var error = await FirstErrorAsync(harness, "the TLS failure is reported");

        Assert.Contains("TLS connection to Kubernetes API server", error.Message, StringComparison.Ordinal);
        Assert.Contains("not signed by the configured certificate authority", error.Message, StringComparison.Ordinal);
        Assert.Contains("kube-apiserver ***", error.Message, StringComparison.Ordinal);
        AssertNoSecret(harness, Secret);
    }

    [Fact]
    public async Task GetAsync_InClusterTokenRotated_NewTokenMaskedAsTheOldOne()
    {
        const string First = "first-projected-token-0a1b";
        const string Second = "second-projected-token-2c3d";
        var tokenFile = _directory.Write("token", First + "\n");
        _server.Token = First;
        var time = new FakeTimeProvider();
        var config = new ClusterConfig
        {
            Server = _server.Url,
            DisplayName = "in-cluster",
            TokenFile = tokenFile,
            CertificateAuthorities = KubeconfigLoader.ReadCertificates(_server.AuthorityPem, "ca.crt", "in-cluster"),
        };
        using var client = new KubernetesApiClient(config, 100, 100, TimeSpan.FromMinutes(1), time, NullLogger.Instance);
        const string Path = "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dorders";

        _server.FailNext(FakeRequestKind.List, 500);
        var first = await Assert.ThrowsAsync<KubernetesApiException>(() => client.GetAsync(Path, KubernetesJsonContext.Default.EndpointSliceList, 1 << 20, default));
        File.WriteAllText(tokenFile, Second);
        _server.Token = Second;
        time.Advance(TimeSpan.FromMinutes(1));
        _server.FailNext(FakeRequestKind.List, 500);
        var second = await Assert.ThrowsAsync<KubernetesApiException>(() => client.GetAsync(Path, KubernetesJsonContext.Default.EndpointSliceList, 1 << 20, default));

        Assert.Contains("presented \"***\"", first.Message, StringComparison.Ordinal);
        Assert.Contains("presented \"***\"", second.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(First, first.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(Second, second.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CliResolve_ApiServerEchoesTheToken_ExitsWithAnErrorWithoutTheToken()
    {
        _server.FailNext(FakeRequestKind.List, 403, count: 1000);
        var kubeconfig = _server.WriteKubeconfig(_directory.Path);
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _directory.Path,
        };
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "Lodestar.Cli.dll"), "resolve", "orders", "--source", "kubernetes", "--kubeconfig", kubeconfig, "--namespace", "shop", "--verbose" })
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["Lodestar__ResolutionTimeout"] = "00:00:03";
        info.Environment.Remove("KUBECONFIG");
        info.Environment.Remove("KUBERNETES_SERVICE_HOST");
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));

        var output = await stdout + await stderr;
        Assert.Equal(2, process.ExitCode);
        Assert.Contains("403", output, StringComparison.Ordinal);
        Assert.Contains("Authorization: Bearer ***", output, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, output, StringComparison.Ordinal);
    }
}
