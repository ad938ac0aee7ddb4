using Lodestar.Kubernetes.Api.Internal;
using Lodestar.Kubernetes.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Kubernetes;
using Lodestar.Testing.Tls;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Kubernetes.Tests.Api;

public sealed class InClusterConfigTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private static Func<string, string?> Env(string host, string port)
        => name => name switch { "KUBERNETES_SERVICE_HOST" => host, "KUBERNETES_SERVICE_PORT" => port, _ => null };

    [Fact]
    public void Load_ServiceAccountFiles_ReadsServerCaNamespaceAndTokenFile()
    {
        using var authority = TestCertificates.CreateAuthority();
        _directory.Write("token", "t1");
        _directory.Write("ca.crt", authority.ExportCertificatePem());
        _directory.Write("namespace", "shop\n");

        var config = InClusterConfig.Load(Env("fd00::1", "443"), _directory.Path);

        Assert.Equal(new Uri("https://[fd00::1]:443"), config.Server);
        Assert.Equal("shop", config.Namespace);
        Assert.Equal(Path.Combine(_directory.Path, "token"), config.TokenFile);
        Assert.Equal(authority.Thumbprint, Assert.Single(config.CertificateAuthorities!).Thumbprint);
        Assert.Contains("in-cluster", config.DisplayName, StringComparison.Ordinal);
        Assert.True(InClusterConfig.IsAvailable(Env("10.96.0.1", "443")));
        Assert.False(InClusterConfig.IsAvailable(_ => null));
    }

    [Fact]
    public void Load_NoTokenFile_ClearError()
    {
        var error = Assert.Throws<KubernetesApiException>(() => InClusterConfig.Load(Env("10.96.0.1", "443"), _directory.Path));

        Assert.Contains("service-account token", error.Message, StringComparison.Ordinal);
        Assert.Contains("Kubernetes API server https://10.96.0.1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetToken_ProjectedTokenRotates_ReReadAfterRefreshInterval()
    {
        var file = _directory.Write("token", "first-token");
        var config = new ClusterConfig { Server = new Uri("https://10.96.0.1"), DisplayName = "in-cluster", TokenFile = file };
        var time = new FakeTimeProvider();
        var tokens = new BearerTokenSource(config, TimeSpan.FromMinutes(1), time, NullLogger.Instance);

        Assert.Equal("first-token", tokens.GetToken());
        File.WriteAllText(file, "second-token\n");
        time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal("first-token", tokens.GetToken());
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal("second-token", tokens.GetToken());

        // A file that cannot be read keeps the last good token.
        File.Delete(file);
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal("second-token", tokens.GetToken());
    }

    [Fact]
    public async Task Source_InClusterTokenRotated_KeepsWatchingWithTheNewToken()
    {
        await using var server = await FakeKubernetesApiServer.StartAsync();
        server.Upsert(FakeEndpointSlice.Create("shop", "orders-a", "orders", 8080, FakeEndpoint.ReadyAt("10.0.0.1")));
        var tokenFile = _directory.Write("token", server.Token);
        var time = new FakeTimeProvider();
        var config = new ClusterConfig
        {
            Server = server.Url,
            DisplayName = "in-cluster",
            TokenFile = tokenFile,
            CertificateAuthorities = KubeconfigLoader.ReadCertificates(server.AuthorityPem, "ca.crt", "in-cluster"),
        };
        using var client = new KubernetesApiClient(config, 100, 100, TimeSpan.FromMinutes(1), time, NullLogger.Instance);
        const string Path = "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dorders";

        Assert.Single((await client.GetAsync(Path, KubernetesJsonContext.Default.EndpointSliceList, KubernetesSourceOptions.DefaultMaxListResponseBytes, default)).Items!);
        server.Token = "rotated-token";
        File.WriteAllText(tokenFile, "rotated-token");
        time.Advance(TimeSpan.FromMinutes(1));

        Assert.Single((await client.GetAsync(Path, KubernetesJsonContext.Default.EndpointSliceList, KubernetesSourceOptions.DefaultMaxListResponseBytes, default)).Items!);
        Assert.DoesNotContain(server.Requests, r => r.StartsWith("REJECTED", StringComparison.Ordinal));
    }
}
