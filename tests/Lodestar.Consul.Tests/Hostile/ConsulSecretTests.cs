using Lodestar.Consul.Internal;
using Lodestar.Consul.Tests.Infrastructure;
using Lodestar.Discovery;
using Lodestar.Testing;
using Lodestar.Testing.Consul;
using Lodestar.Testing.Tls;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Consul.Tests.Hostile;

/// <summary>
/// The ACL token never reaches a log line (at any level, Trace included), an error or an exception, whatever the agent
/// echoes back and however it does. Each path has its own test; each asserts the token, and its first 12 characters,
/// absent from every log line with its exception and from every reported error with its inner exceptions.
/// </summary>
public sealed class ConsulSecretTests
{
    private const string Token = "3f9a1c2e-5b7d-4e60-9a8b-c0ffee5ec4e7";
    private const string HealthPath = "/v1/health/service/orders";
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(15);

    [Theory]
    [InlineData(401, "401 Unauthorized (check the ACL token")]
    [InlineData(403, "403 Forbidden (check the ACL token")]
    [InlineData(500, "500 InternalServerError")]
    public async Task Watch_ErrorBodyEchoesTheToken_TokenNowhereInErrorsOrTraceLogs(int status, string expected)
    {
        // Arrange: the agent accepts the token, then answers an error whose body repeats it (bare, past the point where
        // the message is cut, as a header line, and in JSON), and sends it back in a response header.
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.RequiredToken = Token;
        agent.Register("orders-7001", "orders", "127.0.0.1", 7001);
        agent.InjectHealthFault(ConsulFault.EchoToken(status));
        await using var host = ConsulClientHost.Create(agent, o => o.Token = Token);

        // Act
        using var watch = host.Follow("orders");
        await Eventually.TrueAsync(() => watch.Errors.Count > 0 && watch.Has(7001), s_timeout, "the echo is reported, then the agent answers");

        // Assert
        Assert.Contains($"Consul at {agent.Address}: GET {HealthPath} answered {expected}", watch.Errors[0].Message, StringComparison.Ordinal);
        Assert.Contains("permission denied for token ***", watch.Errors[0].Message, StringComparison.Ordinal);
        AssertNoToken(host, watch.Errors);
    }

    [Fact]
    public async Task Watch_TokenEchoedAsTheIndexHeader_ReportedAsAGarbageIndexWithoutTheToken()
    {
        // Arrange
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.RequiredToken = Token;
        agent.Register("orders-7001", "orders", "127.0.0.1", 7001);
        agent.InjectHealthFault(ConsulFault.EchoTokenInIndex());
        await using var host = ConsulClientHost.Create(agent, o => o.Token = Token);

        // Act
        using var watch = host.Follow("orders");
        await Eventually.TrueAsync(() => watch.Errors.Count > 0 && watch.Has(7001), s_timeout, "the index is reported, then the agent answers");

        // Assert
        Assert.Contains($"Consul at {agent.Address}: GET {HealthPath} answered with an X-Consul-Index that is not a number ('***')", watch.Errors[0].Message, StringComparison.Ordinal);
        AssertNoToken(host, watch.Errors);
    }

    [Fact]
    public async Task Watch_TokenEchoedInAResponseHeaderOfAGarbageAnswer_TokenNowhereInErrorsOrTraceLogs()
    {
        // Arrange: a 200 whose body is not JSON and whose X-Echo-Token header carries the token.
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.RequiredToken = Token;
        agent.Register("orders-7001", "orders", "127.0.0.1", 7001);
        agent.InjectHealthFault(ConsulFault.EchoToken(200));
        await using var host = ConsulClientHost.Create(agent, o => o.Token = Token);

        // Act
        using var watch = host.Follow("orders");
        await Eventually.TrueAsync(() => watch.Errors.Count > 0 && watch.Has(7001), s_timeout, "the answer is reported, then the agent answers");

        // Assert
        Assert.Contains("malformed JSON", watch.Errors[0].Message, StringComparison.Ordinal);
        Assert.Contains(host.Logs.Entries, e => e.EventId.Name == "ConsulRequestStarted" && e.Level == LogLevel.Trace);
        Assert.DoesNotContain(host.Logs.Entries, e => e.Category.StartsWith("System.Net.Http.HttpClient", StringComparison.Ordinal));
        AssertNoToken(host, watch.Errors);
    }

    [Fact]
    public async Task Watch_MalformedHeaderLineQuotesTheToken_TransportErrorReportedWithoutTheTokenOrItsInnerException()
    {
        // Arrange: HttpClient quotes an invalid header line in its exception's message, token and all.
        await using var responder = RawHttpResponder.Start(token =>
            $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Consul-Index: 12\r\nACL token {token} is not welcome here\r\nContent-Length: 2\r\n\r\n[]");
        await using var agent = await FakeConsulAgent.StartAsync();
        await using var host = ConsulClientHost.Create(agent, o =>
        {
            o.Token = Token;
            o.Address = responder.Address;
        });
        var api = host.Services.GetRequiredService<ConsulApi>();

        // Act
        var error = await Assert.ThrowsAsync<ConsulException>(() => api.GetHealthServiceAsync("orders", 0, (_, _) => { }, CancellationToken.None));

        // Assert
        Assert.Equal(1, responder.Requests);
        Assert.Contains($"Consul at {responder.Address}: GET {HealthPath} failed: ", error.Message, StringComparison.Ordinal);
        Assert.Contains("ACL token *** is not welcome here", error.Message, StringComparison.Ordinal);
        Assert.Null(error.InnerException); // it quotes the token, so it is not attached
        AssertNoToken(host, [error]);
    }

    [Fact]
    public async Task Watch_TlsHandshakeFails_ErrorAndResolutionFailureCarryNoToken()
    {
        // Arrange: an HTTPS agent whose certificate the client does not trust.
        using var tls = TlsFiles.Create();
        await using var agent = await FakeConsulAgent.StartTlsAsync(tls, requireClientCertificate: false);
        await using var host = ConsulClientHost.Create(agent, o => o.Token = Token,
            services => services.Configure<LodestarOptions>(o => o.ResolutionTimeout = TimeSpan.FromSeconds(1)));

        // Act
        using var watch = host.Follow("orders");
        var resolution = await Assert.ThrowsAsync<EndpointResolutionException>(async () => await host.Resolver.GetEndpointsAsync("orders", "consul"));
        await Eventually.TrueAsync(() => watch.Errors.Count > 0, s_timeout, "the TLS failure is reported");

        // Assert
        Assert.Contains($"Consul at {agent.Address}: GET {HealthPath} failed", watch.Errors[0].Message, StringComparison.Ordinal);
        Assert.Contains("CaCertificatePath", watch.Errors[0].Message, StringComparison.Ordinal);
        AssertNoToken(host, [.. watch.Errors, resolution]);
    }

    [Fact]
    public async Task Watch_TokenFromConsulHttpTokenEchoed_TokenNowhereInErrorsOrTraceLogs()
    {
        // Arrange: the token comes from CONSUL_HTTP_TOKEN (with the newline a file-fed variable often has).
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.RequiredToken = Token;
        agent.Register("orders-7001", "orders", "127.0.0.1", 7001);
        agent.InjectHealthFault(ConsulFault.EchoToken(403));
        await using var host = ConsulClientHost.Create(agent, configure: null, services =>
        {
            services.RemoveAll<IPostConfigureOptions<ConsulOptions>>();
            services.AddSingleton<IPostConfigureOptions<ConsulOptions>>(new ConsulEnvironmentPostConfigure(name => name == "CONSUL_HTTP_TOKEN" ? Token + "\n" : null));
        });

        // Act
        using var watch = host.Follow("orders");
        await Eventually.TrueAsync(() => watch.Errors.Count > 0 && watch.Has(7001), s_timeout, "the echo is reported, then the agent answers");

        // Assert
        Assert.All(agent.Requests, r => Assert.Equal(Token, r.Token));
        Assert.Contains("403 Forbidden", watch.Errors[0].Message, StringComparison.Ordinal);
        AssertNoToken(host, watch.Errors);
    }

    private static void AssertNoToken(ConsulClientHost host, IEnumerable<Exception> errors)
    {
        Assert.Contains(host.Logs.Entries, e => e.Level == LogLevel.Trace); // Trace was on, and written to
        var texts = errors.Select(e => e.ToString()).Append(host.Logs.AllText).ToList();
        Assert.All(texts, text =>
        {
            Assert.DoesNotContain(Token, text, StringComparison.Ordinal);
            Assert.DoesNotContain(Token[..12], text, StringComparison.Ordinal);
        });
    }
}
