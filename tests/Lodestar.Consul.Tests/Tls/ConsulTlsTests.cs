using Lodestar.Consul.Tests.Infrastructure;
using Lodestar.Discovery;
using Lodestar.Registration;
using Lodestar.Testing;
using Lodestar.Testing.Consul;
using Lodestar.Testing.Tls;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Consul.Tests.Tls;

/// <summary>The Consul source and registrar against the fake agent serving its HTTP API over HTTPS only.</summary>
public sealed class ConsulTlsTests
{
    private const string Token = "tls-test-acl-token-0123456789";
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    private static ConsulClientHost CreateHost(FakeConsulAgent agent, Action<ConsulOptions> configure)
        => ConsulClientHost.Create(agent, configure, services => services.Configure<LodestarOptions>(o => o.ResolutionTimeout = TimeSpan.FromSeconds(1)));

    private static ServiceRegistration Instance(int port) => new() { ServiceName = "orders", InstanceId = $"orders-{port}", Host = "127.0.0.1", Port = port };

    [Fact]
    public async Task Watch_CaAndClientCertificate_DiscoveryAndRegistrationWork()
    {
        // Arrange: the agent demands a client certificate signed by the test CA (verify_incoming).
        using var tls = TlsFiles.Create();
        await using var agent = await FakeConsulAgent.StartTlsAsync(tls, requireClientCertificate: true);
        agent.RequiredToken = Token;
        agent.Register("orders-7001", "orders", "127.0.0.1", 7001);
        await using var host = ConsulClientHost.Create(agent, o =>
        {
            o.Token = Token;
            o.CaCertificatePath = tls.CaCertificatePath;
            o.ClientCertificatePath = tls.ClientCertificatePath;
            o.ClientKeyPath = tls.ClientKeyPath;
        });
        using var watch = host.Follow("orders");
        await Eventually.TrueAsync(() => watch.Has(7001), s_timeout, "the instance already there is discovered");

        // Act
        var handle = await host.Registrar.RegisterAsync(Instance(5001), CancellationToken.None);
        await Eventually.TrueAsync(() => watch.Has(5001), s_timeout, "the registration is discovered");
        var registered = agent.Find("orders-5001");
        await handle.DisposeAsync();
        await Eventually.TrueAsync(() => !watch.Has(5001), s_timeout, "the removal is discovered");

        // Assert
        Assert.StartsWith("https://", agent.Address, StringComparison.Ordinal);
        Assert.NotNull(registered);
        Assert.Null(agent.Find("orders-5001"));
        Assert.Contains(tls.ClientCertificate.Subject, agent.ClientCertificateSubjects);
        Assert.Empty(watch.Errors);
    }

    [Fact]
    public async Task Watch_TlsSkipVerify_WorksWithoutCa()
    {
        // Arrange: nothing tells Lodestar to trust the test CA; TlsSkipVerify accepts the certificate unchecked.
        using var tls = TlsFiles.Create();
        await using var agent = await FakeConsulAgent.StartTlsAsync(tls, requireClientCertificate: false);
        agent.Register("orders-7001", "orders", "127.0.0.1", 7001);
        await using var host = ConsulClientHost.Create(agent, o => o.TlsSkipVerify = true);

        // Act
        var set = await host.Resolver.GetEndpointsAsync("orders", "consul");
        await using var handle = await host.Registrar.RegisterAsync(Instance(5001), CancellationToken.None);

        // Assert
        Assert.Equal([7001], set.Endpoints.Select(e => e.Port));
        Assert.NotNull(agent.Find("orders-5001"));
    }

    [Fact]
    public async Task Watch_ServerCertificateFromIntermediateCa_TrustedThroughRootCa()
    {
        // Arrange: the agent sends its certificate and the intermediate CA that signed it; Lodestar trusts only the root.
        using var tls = TlsFiles.Create(serverSignedByIntermediate: true);
        await using var agent = await FakeConsulAgent.StartTlsAsync(tls, requireClientCertificate: false);
        agent.Register("orders-7001", "orders", "127.0.0.1", 7001);
        await using var host = CreateHost(agent, o => o.CaCertificatePath = tls.CaCertificatePath);

        // Act
        var set = await host.Resolver.GetEndpointsAsync("orders", "consul");

        // Assert
        Assert.Equal([7001], set.Endpoints.Select(e => e.Port));
    }

    [Fact]
    public async Task Watch_UntrustedServerCertificate_ReportsErrorAndPublishesNothing()
    {
        // Arrange: no CA and no TlsSkipVerify, so the system store decides, and it does not know the test CA.
        using var tls = TlsFiles.Create();
        await using var agent = await FakeConsulAgent.StartTlsAsync(tls, requireClientCertificate: false);
        agent.Register("orders-7001", "orders", "127.0.0.1", 7001);
        await using var host = CreateHost(agent, o => o.Token = Token);
        using var watch = host.Follow("orders");

        // Act
        await Eventually.TrueAsync(() => watch.Errors.Count >= 2, s_timeout, "the failure is reported, and again after a retry");
        var resolveError = await Assert.ThrowsAsync<EndpointResolutionException>(() => host.Resolver.GetEndpointsAsync("orders", "consul").AsTask());
        var registerError = await Assert.ThrowsAsync<ConsulException>(() => host.Registrar.RegisterAsync(Instance(5001), CancellationToken.None));

        // Assert
        var error = Assert.IsType<ConsulException>(watch.Errors[^1]);
        Assert.Contains(agent.Address, error.Message, StringComparison.Ordinal);
        Assert.Contains("TLS handshake failed, the server certificate was rejected", error.Message, StringComparison.Ordinal);
        Assert.Contains("ConsulOptions.CaCertificatePath", error.Message, StringComparison.Ordinal);
        Assert.Contains("TLS handshake failed", resolveError.Message, StringComparison.Ordinal);
        Assert.Contains("TLS handshake failed", registerError.Message, StringComparison.Ordinal);
        Assert.Null(watch.Current);
        Assert.Equal(0, watch.Sets);
        Assert.Empty(agent.Requests);
        Assert.All([error.ToString(), resolveError.ToString(), registerError.ToString(), host.Logs.AllText],
            text => Assert.DoesNotContain(Token, text, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Watch_OtherCa_ReportsErrorAndPublishesNothing()
    {
        // Arrange: the configured CA did not sign the agent's certificate.
        using var tls = TlsFiles.Create();
        await using var agent = await FakeConsulAgent.StartTlsAsync(tls, requireClientCertificate: false);
        agent.Register("orders-7001", "orders", "127.0.0.1", 7001);
        await using var host = CreateHost(agent, o =>
        {
            o.CaCertificatePath = tls.OtherCaCertificatePath;
            o.ClientCertificatePath = tls.ClientCertificatePath;
            o.ClientKeyPath = tls.ClientKeyPath;
        });
        using var watch = host.Follow("orders");

        // Act
        await Eventually.TrueAsync(() => watch.Errors.Count >= 2, s_timeout, "the failure is reported, and again after a retry");

        // Assert
        var error = Assert.IsType<ConsulException>(watch.Errors[^1]);
        Assert.Contains("TLS handshake failed, the server certificate was rejected", error.Message, StringComparison.Ordinal);
        Assert.Contains("ConsulOptions.CaCertificatePath", error.Message, StringComparison.Ordinal);
        Assert.Null(watch.Current);
        Assert.Empty(agent.Requests);
        AssertNoKeyMaterial(tls, [error.ToString(), host.Logs.AllText]);
    }

    [Fact]
    public async Task Watch_ServerCertificateForAnotherHost_ReportsErrorAndPublishesNothing()
    {
        // Arrange: the configured CA signed the agent's certificate, but for another name than the host Lodestar dials.
        using var tls = TlsFiles.Create(serverDnsName: "consul.other.test");
        await using var agent = await FakeConsulAgent.StartTlsAsync(tls, requireClientCertificate: false);
        agent.Register("orders-7001", "orders", "127.0.0.1", 7001);
        await using var host = CreateHost(agent, o => o.CaCertificatePath = tls.CaCertificatePath);
        using var watch = host.Follow("orders");

        // Act
        await Eventually.TrueAsync(() => watch.Errors.Count >= 2, s_timeout, "the failure is reported, and again after a retry");

        // Assert
        var error = Assert.IsType<ConsulException>(watch.Errors[^1]);
        Assert.Contains("TLS handshake failed, the server certificate was rejected", error.Message, StringComparison.Ordinal);
        Assert.Contains("name host '127.0.0.1'", error.Message, StringComparison.Ordinal);
        Assert.Null(watch.Current);
        Assert.Empty(agent.Requests);
    }

    [Fact]
    public async Task Watch_ClientCertificateRequiredButNotGiven_ReportsErrorAndPublishesNothing()
    {
        // Arrange: the server certificate is trusted, but the agent verifies incoming connections and Lodestar has no certificate.
        using var tls = TlsFiles.Create();
        await using var agent = await FakeConsulAgent.StartTlsAsync(tls, requireClientCertificate: true);
        agent.Register("orders-7001", "orders", "127.0.0.1", 7001);
        await using var host = CreateHost(agent, o => o.CaCertificatePath = tls.CaCertificatePath);
        using var watch = host.Follow("orders");

        // Act
        await Eventually.TrueAsync(() => watch.Errors.Count >= 2, s_timeout, "the failure is reported, and again after a retry");
        var registerError = await Assert.ThrowsAsync<ConsulException>(() => host.Registrar.RegisterAsync(Instance(5001), CancellationToken.None));

        // Assert
        var error = Assert.IsType<ConsulException>(watch.Errors[^1]);
        Assert.Contains(agent.Address, error.Message, StringComparison.Ordinal);
        Assert.Contains("the server closed the TLS connection without answering", error.Message, StringComparison.Ordinal);
        Assert.Contains("requires a client certificate", error.Message, StringComparison.Ordinal);
        Assert.Contains("none is configured", error.Message, StringComparison.Ordinal);
        Assert.Contains("ConsulOptions.ClientCertificatePath", error.Message, StringComparison.Ordinal);
        Assert.Contains("client certificate", registerError.Message, StringComparison.Ordinal);
        Assert.Null(watch.Current);
        Assert.Empty(agent.Requests);
    }

    private static void AssertNoKeyMaterial(TlsFiles tls, IEnumerable<string> texts)
        => Assert.All(texts, text => Assert.False(tls.ContainsClientKeyMaterial(text), "a message or log line holds private key material"));
}
