using Lodestar.Discovery;
using Lodestar.Kubernetes.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Kubernetes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lodestar.Kubernetes.Tests.DependencyInjection;

/// <summary>
/// kubeconfig's <c>tls-server-name</c>: the API server is reached at 127.0.0.1, but its certificate names only
/// <c>kubernetes.lodestar.test</c>, as when a cluster is reached through an address its certificate does not carry.
/// </summary>
public sealed class TlsServerNameTests : IAsyncLifetime
{
    private const string CertificateName = "kubernetes.lodestar.test";

    private readonly TempDirectory _directory = new();
    private readonly CapturingLoggerProvider _logs = new();
    private FakeKubernetesApiServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await FakeKubernetesApiServer.StartAsync(certificateNames: [CertificateName]);
        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-a", "orders", 8080, FakeEndpoint.ReadyAt("10.1.0.1", "orders-a")));
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _directory.Dispose();
    }

    [Fact]
    public async Task GetEndpointsAsync_TlsServerNameMatchesTheCertificate_ConnectsAndAsksForThatNameInSni()
    {
        await using var provider = Build(_server.WriteKubeconfig(_directory.Path, tlsServerName: CertificateName));

        var set = await provider.GetRequiredService<IEndpointResolver>().GetEndpointsAsync("orders", "kubernetes");

        Assert.Equal("10.1.0.1:8080", Assert.Single(set.Endpoints).Address);
        Assert.NotEmpty(_server.ServerNamesRequested);
        Assert.All(_server.ServerNamesRequested, name => Assert.Equal(CertificateName, name));
    }

    [Fact]
    public async Task GetEndpointsAsync_NoTlsServerName_ErrorSaysTheCertificateDoesNotNameTheHostAndPointsAtTheSetting()
    {
        await using var provider = Build(_server.WriteKubeconfig(_directory.Path));

        var error = await Assert.ThrowsAsync<EndpointResolutionException>(
            () => provider.GetRequiredService<IEndpointResolver>().GetEndpointsAsync("orders", "kubernetes").AsTask());

        Assert.Contains("does not name host '127.0.0.1'", error.Message, StringComparison.Ordinal);
        Assert.Contains("tls-server-name", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(_server.Token, error.ToString() + _logs.AllText, StringComparison.Ordinal);
        Assert.DoesNotContain(_server.Requests, r => r.StartsWith("LIST", StringComparison.Ordinal));
    }

    [Fact]
    public async Task GetEndpointsAsync_TlsServerNameTheCertificateDoesNotCarry_ErrorNamesIt()
    {
        await using var provider = Build(_server.WriteKubeconfig(_directory.Path, tlsServerName: "other.lodestar.test"));

        var error = await Assert.ThrowsAsync<EndpointResolutionException>(
            () => provider.GetRequiredService<IEndpointResolver>().GetEndpointsAsync("orders", "kubernetes").AsTask());

        Assert.Contains("does not name 'other.lodestar.test', the cluster's tls-server-name", error.Message, StringComparison.Ordinal);
        Assert.Contains("context 'fake'", error.Message, StringComparison.Ordinal);
        Assert.Contains("other.lodestar.test", _server.ServerNamesRequested);
        Assert.DoesNotContain(_server.Requests, r => r.StartsWith("LIST", StringComparison.Ordinal));
    }

    private ServiceProvider Build(string kubeconfig)
    {
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(_logs).SetMinimumLevel(LogLevel.Trace));
        services.AddLodestar(o => o.ResolutionTimeout = TimeSpan.FromSeconds(5)).AddKubernetes(o =>
        {
            o.KubeconfigPath = kubeconfig;
            o.Namespace = "shop";
            o.Backoff.InitialDelay = TimeSpan.FromMilliseconds(50);
            o.Backoff.MaxDelay = TimeSpan.FromMilliseconds(200);
        });
        return services.BuildServiceProvider();
    }
}
