using System.Net;
using System.Security.Claims;
using System.Text.Encodings.Web;
using System.Text.Json;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Health;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.AspNetCore.Tests.Admin;

public sealed class AdminApiTests
{
    [Fact]
    public async Task MapLodestarAdmin_BackendFailsThenTimePasses_JsonShowsEjectionThenReturn()
    {
        // Arrange
        await using var app = await AdminApp.StartAsync();
        var bad = app.Backends[0];
        var servedBefore = bad.Requests; // the warm-up request may have landed here
        bad.Status = 503;

        // Act
        await app.CallAsync(30);
        var ejected = await app.GetEndpointAsync(bad);
        app.Advance(TimeSpan.FromSeconds(40));
        var returned = await app.GetEndpointAsync(bad);
        var json = await app.GetJsonAsync();

        // Assert
        Assert.False(ejected.GetProperty("healthy").GetBoolean());
        Assert.Equal(EjectionReasons.Consecutive5xx, ejected.GetProperty("ejection").GetProperty("reason").GetString());
        Assert.Equal(30_000, ejected.GetProperty("ejection").GetProperty("timeLeft").GetDouble());
        Assert.Equal(servedBefore + 5, ejected.GetProperty("requests").GetInt64()); // ejected on the fifth 503 in a row
        Assert.Equal(servedBefore / (servedBefore + 5.0), ejected.GetProperty("successRate").GetDouble(), 6);
        Assert.Equal(JsonValueKind.Null, returned.GetProperty("ejection").ValueKind);
        Assert.True(returned.GetProperty("healthy").GetBoolean());
        Assert.Equal(["EndpointAdded", "EndpointEjected", "EndpointReturned"], AdminApp.EventKinds(json, bad));
        Assert.Equal("2026-01-01T00:00:30+00:00", json.GetProperty("events").EnumerateArray()
            .Single(e => e.GetProperty("kind").GetString() == "EndpointReturned").GetProperty("timestamp").GetString());
    }

    [Fact]
    public async Task MapLodestarAdmin_BreakerOpensProbesAndCloses_JsonFollowsEachTransition()
    {
        // Arrange
        await using var app = await AdminApp.StartAsync(services: s =>
        {
            s.Configure<OutlierDetectionOptions>("orders", o => o.Enabled = false);
            s.Configure<CircuitBreakerOptions>("orders", o =>
            {
                o.Enabled = true;
                o.MinimumThroughput = 2;
                o.BreakDuration = TimeSpan.FromSeconds(5);
            });
        });
        var flaky = app.Backends[1];
        flaky.Status = 500;

        // Act
        await app.CallAsync(12);
        var open = await app.GetEndpointAsync(flaky);
        app.Advance(TimeSpan.FromSeconds(5));
        var halfOpen = await app.GetEndpointAsync(flaky);
        flaky.Status = 200;
        await app.CallAsync(6);
        var closed = await app.GetEndpointAsync(flaky);
        var json = await app.GetJsonAsync();

        // Assert
        Assert.Equal("open", open.GetProperty("breaker").GetString());
        Assert.False(open.GetProperty("healthy").GetBoolean());
        Assert.Equal("half_open", halfOpen.GetProperty("breaker").GetString());
        Assert.Equal("closed", closed.GetProperty("breaker").GetString());
        Assert.Equal(["EndpointAdded", "BreakerOpened", "BreakerHalfOpened", "BreakerClosed"], AdminApp.EventKinds(json, flaky));
    }

    [Fact]
    public async Task MapLodestarAdmin_RegistryDrainsThenSourceFailsAndRecovers_JsonShowsDrainingErrorAndRecovery()
    {
        // Arrange
        await using var app = await AdminApp.StartAsync();
        await app.CallAsync(3);
        var endpoints = app.Backends.Select(b => DiscoveredEndpoint.Create("127.0.0.1", b.Port)).ToArray();

        // Act
        await app.Source.PublishAsync("orders", endpoints[0], endpoints[1], endpoints[2].With(weight: 0));
        await Testing.Eventually.TrueAsync(async () => (await app.GetEndpointAsync(app.Backends[2])).GetProperty("draining").GetBoolean(),
            TimeSpan.FromSeconds(10), "the drained endpoint shows");
        app.Advance(TimeSpan.FromSeconds(2));
        await app.Source.FailAsync("orders", new HttpRequestException("registry at 127.0.0.1:8500 answered 500"));
        var failing = (await app.GetJsonAsync()).GetProperty("services")[0].GetProperty("source");
        app.Advance(TimeSpan.FromSeconds(3));
        await app.Source.PublishAsync("orders", endpoints);
        var json = await app.GetJsonAsync();
        var recovered = json.GetProperty("services")[0].GetProperty("source");

        // Assert
        var kinds = json.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("kind").GetString()).ToArray();
        Assert.Equal("push", failing.GetProperty("name").GetString());
        Assert.Equal("registry at 127.0.0.1:8500 answered 500", failing.GetProperty("lastError").GetString());
        Assert.Equal("2026-01-01T00:00:02+00:00", failing.GetProperty("lastErrorAt").GetString());
        Assert.Equal(JsonValueKind.Null, recovered.GetProperty("lastError").ValueKind);
        Assert.Equal(3, recovered.GetProperty("setVersion").GetInt64());
        Assert.Contains("SourceError", kinds);
        Assert.Equal("SourceRecovered", kinds.Last());
    }

    [Fact]
    public async Task MapLodestarAdmin_NonLoopbackCaller_Gets403UnlessOpened()
    {
        // Arrange
        await using var closedApp = await AdminApp.StartAsync(backends: 1, fakeClock: false);
        await using var openApp = await AdminApp.StartAsync(backends: 1, fakeClock: false, admin: o => o.AllowRemoteCallers = true);

        // Act
        var local = await closedApp.Admin.GetAsync(closedApp.Url + "/lodestar/api");
        var remoteApi = await SendRemoteAsync(closedApp, "/lodestar/api");
        var remotePage = await SendRemoteAsync(closedApp, "/lodestar");
        var opened = await SendRemoteAsync(openApp, "/lodestar/api");

        // Assert
        Assert.Equal(HttpStatusCode.OK, local.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, remoteApi.StatusCode);
        Assert.Contains("loopback", await remoteApi.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, remotePage.StatusCode);
        Assert.Equal(HttpStatusCode.OK, opened.StatusCode);
    }

    [Fact]
    public async Task MapLodestarAdmin_RequireAuthorization_AnonymousGets401AndAuthenticatedGets200()
    {
        // Arrange
        await using var app = await AdminApp.StartAsync(backends: 1, fakeClock: false,
            services: s =>
            {
                s.AddAuthentication(HeaderAuthenticationHandler.SchemeName)
                    .AddScheme<AuthenticationSchemeOptions, HeaderAuthenticationHandler>(HeaderAuthenticationHandler.SchemeName, null);
                s.AddAuthorization();
            },
            conventions: c => c.RequireAuthorization(),
            beforeRouting: a =>
            {
                a.UseAuthentication();
                a.UseAuthorization();
            });

        // Act
        var anonymousApi = await app.Admin.GetAsync(app.Url + "/lodestar/api");
        var anonymousPage = await app.Admin.GetAsync(app.Url + "/lodestar");
        using var request = new HttpRequestMessage(HttpMethod.Get, app.Url + "/lodestar/api");
        request.Headers.Add(HeaderAuthenticationHandler.Header, "operator");
        var authenticated = await app.Admin.SendAsync(request);

        // Assert
        Assert.Equal(HttpStatusCode.Unauthorized, anonymousApi.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymousPage.StatusCode);
        Assert.Equal(HttpStatusCode.OK, authenticated.StatusCode);
    }

    [Fact]
    public async Task MapLodestarAdmin_ConfiguredSecretAnywhere_NeverInAnyResponse()
    {
        // Arrange
        const string Secret = "s3cr3t-admin-value";
        const string Password = "pw-9f8e7d6c";
        var redactor = new SecretRedactor().Add(Secret);
        await using var app = await AdminApp.StartAsync(backends: 1, fakeClock: false, admin: o => o.Redactor = redactor);
        var endpoint = DiscoveredEndpoint.Create("127.0.0.1", app.Backends[0].Port, metadata: new Dictionary<string, string>
        {
            ["note"] = "deployed with " + Secret,
            ["db"] = $"postgres://app:{Password}@127.0.0.1:5432/orders",
            ["api-token"] = "tok-abcdef-123456",
            ["team"] = "checkout",
        });
        await app.Source.PublishAsync("orders", endpoint);
        await app.CallAsync(2);
        await app.Source.FailAsync("orders", new HttpRequestException($"registry echoed X-Consul-Token: {Secret} and https://svc:{Password}@127.0.0.1/v1"));

        // Act
        var api = await app.Admin.GetStringAsync(app.Url + "/lodestar/api");
        var page = await app.Admin.GetStringAsync(app.Url + "/lodestar");
        var metadata = (await app.GetEndpointAsync(app.Backends[0])).GetProperty("metadata");

        // Assert
        foreach (var body in new[] { api, page })
        {
            Assert.DoesNotContain(Secret, body, StringComparison.Ordinal);
            Assert.DoesNotContain(Password, body, StringComparison.Ordinal);
            Assert.DoesNotContain("tok-abcdef-123456", body, StringComparison.Ordinal);
        }

        Assert.Contains("registry echoed", api, StringComparison.Ordinal);
        Assert.Equal("checkout", metadata.GetProperty("team").GetString());
        Assert.Equal("postgres://127.0.0.1:5432/orders", metadata.GetProperty("db").GetString());
        Assert.False(metadata.TryGetProperty("api-token", out _), "keys that name a credential are hidden");
    }

    [Fact]
    public async Task MapLodestarAdmin_MetadataKeysOption_ShowsOnlyThoseKeys()
    {
        // Arrange
        await using var app = await AdminApp.StartAsync(backends: 1, fakeClock: false, admin: o => o.MetadataKeys.Add("team"));
        await app.Source.PublishAsync("orders", DiscoveredEndpoint.Create("127.0.0.1", app.Backends[0].Port,
            metadata: new Dictionary<string, string> { ["team"] = "checkout", ["build"] = "1234" }));
        await app.CallAsync(1);

        // Act
        var metadata = (await app.GetEndpointAsync(app.Backends[0])).GetProperty("metadata");

        // Assert
        Assert.Equal(["team"], metadata.EnumerateObject().Select(p => p.Name).ToArray());
    }

    [Fact]
    public async Task MapLodestarAdmin_Page_IsSelfContainedHtmlPointingAtTheApi()
    {
        // Arrange
        await using var app = await AdminApp.StartAsync(backends: 1, fakeClock: false);

        // Act
        var response = await app.Admin.GetAsync(app.Url + "/lodestar");
        var html = await response.Content.ReadAsStringAsync();
        var slash = await app.Admin.GetAsync(app.Url + "/lodestar/");

        // Assert
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, slash.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType!.MediaType);
        Assert.Contains("content=\"/lodestar/api\"", html, StringComparison.Ordinal);
        Assert.DoesNotContain("{{", html, StringComparison.Ordinal);
        Assert.DoesNotMatch(@"(src|href)\s*=\s*""https?://", html); // no CDN: everything is in the page
        Assert.Contains("default-src 'none'", response.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.Equal("no-store", response.Headers.CacheControl!.ToString());
    }

    [Fact]
    public async Task MapLodestarAdmin_WithoutAddLodestar_ThrowsNamingTheMissingCall()
    {
        // Arrange
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        await using var app = builder.Build();

        // Act
        var error = Assert.Throws<InvalidOperationException>(() => app.MapLodestarAdmin());

        // Assert
        Assert.Contains("AddLodestar()", error.Message, StringComparison.Ordinal);
    }

    private static async Task<HttpResponseMessage> SendRemoteAsync(AdminApp app, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, app.Url + path);
        request.Headers.Add(AdminApp.RemoteHeader, "1");
        return await app.Admin.SendAsync(request);
    }

    /// <summary>Authenticates a request that names a user in a header; anonymous otherwise.</summary>
    private sealed class HeaderAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        public const string SchemeName = "TestHeader";
        public const string Header = "X-Test-User";

        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            if (!Request.Headers.TryGetValue(Header, out var user))
            {
                return Task.FromResult(AuthenticateResult.NoResult());
            }

            var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, user.ToString())], SchemeName);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
        }
    }
}
