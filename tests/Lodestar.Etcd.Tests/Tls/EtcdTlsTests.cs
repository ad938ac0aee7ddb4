using Lodestar.Discovery;
using Lodestar.Etcd.Client.Internal;
using Lodestar.Etcd.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Etcd;
using Lodestar.Testing.Tls;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Etcd.Tests.Tls;

/// <summary>The etcd source and registrar against a real etcd whose client port serves HTTPS only.</summary>
public sealed class EtcdTlsTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private static string Go(string addr) => $"{{\"Op\":0,\"Addr\":\"{addr}\",\"Metadata\":null}}";

    private static EtcdHarness CreateHarness(EtcdServer etcd, Action<EtcdOptions> configure)
        => EtcdHarness.Create(etcd, configure, services => services.Configure<LodestarOptions>(o => o.ResolutionTimeout = TimeSpan.FromSeconds(1)));

    private static void UseClientCertificate(EtcdOptions options, TlsFiles tls)
    {
        options.ClientCertificatePath = tls.ClientCertificatePath;
        options.ClientKeyPath = tls.ClientKeyPath;
    }

    [Fact]
    public async Task Watch_CaAndClientCertificate_RegistrationAndRemovalAreSeen()
    {
        // Arrange: etcd demands a client certificate signed by the test CA; one process watches, another registers.
        using var tls = TlsFiles.Create();
        await using var etcd = await EtcdServer.StartTlsAsync(tls, requireClientCertificate: true);
        Action<EtcdOptions> configure = o =>
        {
            o.CaCertificatePath = tls.CaCertificatePath;
            UseClientCertificate(o, tls);
        };
        await using var watcher = EtcdHarness.Create(etcd, configure);
        await using var registrant = EtcdHarness.Create(etcd, configure);
        using var tracker = new SetTracker(watcher.Resolver, "orders");
        await Eventually.TrueAsync(() => tracker.Latest is not null, s_wait, "the first (empty) set over TLS");

        // Act
        var handle = await registrant.Registrar.RegisterAsync(EtcdHarness.Instance("orders", 5001, "i-1"), default);
        await Eventually.TrueAsync(() => tracker.Addresses.SequenceEqual(["127.0.0.1:5001"]), s_wait, "the watch sees the registration");
        var stored = await etcd.GetAsync("orders/i-1");
        await handle.DisposeAsync();
        await Eventually.TrueAsync(() => tracker.Latest?.Count == 0, s_wait, "the watch sees the removal");

        // Assert
        Assert.StartsWith("https://", etcd.ClientUrl, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1:5001", stored, StringComparison.Ordinal);
        Assert.Null(await etcd.GetAsync("orders/i-1"));
        Assert.Equal(0, tracker.Errors);
    }

    [Fact]
    public async Task Resolve_ClientCertificateAndKeyInOneFile_Discovers()
    {
        // Arrange: no ClientKeyPath; the certificate file holds the key too.
        using var tls = TlsFiles.Create();
        await using var etcd = await EtcdServer.StartTlsAsync(tls, requireClientCertificate: true);
        await etcd.PutAsync("orders/i-1", Go("127.0.0.1:5001"));
        await using var harness = EtcdHarness.Create(etcd, o =>
        {
            o.CaCertificatePath = tls.CaCertificatePath;
            o.ClientCertificatePath = tls.ClientCertificateAndKeyPath;
        });

        // Act
        var set = await harness.Resolver.GetEndpointsAsync("orders", "etcd");

        // Assert
        Assert.Equal("127.0.0.1:5001", Assert.Single(set.Endpoints).Address);
    }

    [Fact]
    public async Task Resolve_ServerCertificateFromIntermediateCa_TrustedThroughRootCa()
    {
        // Arrange: etcd sends its certificate and the intermediate CA that signed it; Lodestar trusts only the root.
        using var tls = TlsFiles.Create(serverSignedByIntermediate: true);
        await using var etcd = await EtcdServer.StartTlsAsync(tls, requireClientCertificate: false);
        await etcd.PutAsync("orders/i-1", Go("127.0.0.1:5001"));
        await using var harness = CreateHarness(etcd, o => o.CaCertificatePath = tls.CaCertificatePath);

        // Act
        var set = await harness.Resolver.GetEndpointsAsync("orders", "etcd");
        await using var handle = await harness.Registrar.RegisterAsync(EtcdHarness.Instance("orders", 5002, "i-2"), default);

        // Assert
        Assert.Equal("127.0.0.1:5001", Assert.Single(set.Endpoints).Address);
        Assert.NotNull(await etcd.GetAsync("orders/i-2"));
    }

    [Fact]
    public async Task Watch_OtherCa_ReportsServerCertificateErrorAndPublishesNothing()
    {
        // Arrange: an instance is there to be found, but Lodestar trusts a CA that did not sign etcd's certificate.
        using var tls = TlsFiles.Create();
        await using var etcd = await EtcdServer.StartTlsAsync(tls, requireClientCertificate: false);
        await etcd.PutAsync("orders/i-1", Go("127.0.0.1:5001"));
        await using var harness = CreateHarness(etcd, o =>
        {
            o.CaCertificatePath = tls.OtherCaCertificatePath;
            UseClientCertificate(o, tls);
        });
        using var tracker = new SetTracker(harness.Resolver, "orders");

        // Act
        await Eventually.TrueAsync(() => tracker.Errors >= 2, s_wait, "the failure is reported, and again after a retry");
        var resolveError = await Assert.ThrowsAsync<EndpointResolutionException>(() => harness.Resolver.GetEndpointsAsync("orders", "etcd").AsTask());
        var registerError = await Assert.ThrowsAsync<EtcdException>(() => harness.Registrar.RegisterAsync(EtcdHarness.Instance("orders", 5002), default));

        // Assert
        var error = Assert.IsType<EtcdException>(tracker.LastError);
        Assert.Contains(etcd.ClientUrl, error.Message, StringComparison.Ordinal);
        Assert.Contains("TLS handshake failed, the server certificate was rejected", error.Message, StringComparison.Ordinal);
        Assert.Contains("EtcdOptions.CaCertificatePath", error.Message, StringComparison.Ordinal);
        Assert.Contains("TLS handshake failed", resolveError.Message, StringComparison.Ordinal);
        Assert.Contains("TLS handshake failed", registerError.Message, StringComparison.Ordinal);
        Assert.Equal(0, tracker.Sets);
        Assert.Null(tracker.Latest);
        Assert.Null(await etcd.GetAsync("orders/orders-127.0.0.1-5002"));
        AssertNoKeyMaterial(tls, [error.ToString(), resolveError.ToString(), registerError.ToString(), harness.Logs.AllText]);
    }

    [Fact]
    public async Task Watch_ClientCertificateRequiredButNotConfigured_ReportsClientCertificateError()
    {
        // Arrange: the server certificate is trusted, but etcd runs with --client-cert-auth and Lodestar has no certificate.
        using var tls = TlsFiles.Create();
        await using var etcd = await EtcdServer.StartTlsAsync(tls, requireClientCertificate: true);
        await etcd.PutAsync("orders/i-1", Go("127.0.0.1:5001"));
        await using var harness = CreateHarness(etcd, o => o.CaCertificatePath = tls.CaCertificatePath);
        using var tracker = new SetTracker(harness.Resolver, "orders");

        // Act
        await Eventually.TrueAsync(() => tracker.Errors >= 2, s_wait, "the failure is reported, and again after a retry");
        var resolveError = await Assert.ThrowsAsync<EndpointResolutionException>(() => harness.Resolver.GetEndpointsAsync("orders", "etcd").AsTask());

        // Assert
        var error = Assert.IsType<EtcdException>(tracker.LastError);
        Assert.Contains(etcd.ClientUrl, error.Message, StringComparison.Ordinal);
        Assert.Contains("the server refused the client certificate", error.Message, StringComparison.Ordinal);
        Assert.Contains("none is configured", error.Message, StringComparison.Ordinal);
        Assert.Contains("EtcdOptions.ClientCertificatePath", error.Message, StringComparison.Ordinal);
        Assert.Contains("client certificate", resolveError.Message, StringComparison.Ordinal);
        Assert.Equal(0, tracker.Sets);
        Assert.Null(tracker.Latest);
    }

    private static void AssertNoKeyMaterial(TlsFiles tls, IEnumerable<string> texts)
        => Assert.All(texts, text => Assert.False(tls.ContainsClientKeyMaterial(text), "a message or log line holds private key material"));
}
