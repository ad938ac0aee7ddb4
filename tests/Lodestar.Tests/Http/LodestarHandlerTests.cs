using System.Net;
using Lodestar.Http;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Lodestar.Testing;
using Lodestar.Tests.Infrastructure;
using Lodestar.Tests.Resilience;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Tests.Http;

public sealed class LodestarHandlerTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task RoundRobin_FiveBackends_SpreadsEvenlyPerRequest(bool http2)
    {
        // Arrange: five real Kestrel backends; over HTTP/2 one connection per endpoint must not pin traffic.
        var backends = await StartBackendsAsync(5, http2 ? HttpProtocols.Http2 : HttpProtocols.Http1);
        await using var client = LodestarClient.Create(o => o.Policy = LoadBalancingPolicies.RoundRobin, http2);
        client.Configuration.SetEndpoints("orders", backends.Select(b => b.Url).ToArray());

        // Act
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < 1000; i++)
        {
            using var response = await client.Http.GetAsync("http://orders/work");
            response.EnsureSuccessStatusCode();
            Assert.Equal(http2 ? HttpVersion.Version20 : HttpVersion.Version11, response.Version);
            var instance = response.Headers.GetValues("X-Instance").Single();
            counts[instance] = counts.GetValueOrDefault(instance) + 1;
        }

        // Assert: each of the five within ±5 % of its fair share of 200.
        Assert.Equal(5, counts.Count);
        Assert.All(counts.Values, c => Assert.InRange(c, 190, 210));
        await DisposeAllAsync(backends);
    }

    [Fact]
    public async Task LeastRequest_EndpointWithManyInFlight_GetsLessTraffic()
    {
        // Arrange: backend 0 holds every request it gets until released; five are sent while it is alone.
        var backends = await StartBackendsAsync(3);
        backends[0].Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var client = LodestarClient.Create(o => o.Policy = LoadBalancingPolicies.LeastRequest);
        client.Configuration.SetEndpoints("orders", backends[0].Url);
        var held = Enumerable.Range(0, 5).Select(_ => client.Http.GetAsync("http://orders/")).ToList();
        await Eventually.TrueAsync(() => backends[0].InFlight == 5, TimeSpan.FromSeconds(10), "five requests are held by backend 0");
        client.Configuration.SetEndpoints("orders", backends.Select(b => b.Url).ToArray());
        var balancer = await client.Services.GetRequiredService<BalancerRegistry>().GetAsync("orders", null, LoadBalancingPolicies.LeastRequest, default);
        await Eventually.TrueAsync(() => balancer.Routable.Count == 3, TimeSpan.FromSeconds(5), "the balancer sees all three endpoints");
        var heldAtStart = backends[0].Requests;

        // Act: sequential requests while backend 0 has several in flight.
        for (var i = 0; i < 300; i++)
        {
            using var response = await client.Http.GetAsync("http://orders/");
            response.EnsureSuccessStatusCode();
        }

        // Assert: P2C never prefers the busy endpoint while the others have fewer in flight.
        var busyDuringRun = backends[0].Requests - heldAtStart;
        Assert.Equal(0, busyDuringRun);
        Assert.True(backends[1].Requests > 100 && backends[2].Requests > 100);

        backends[0].Gate!.SetResult();
        foreach (var task in held)
        {
            (await task).Dispose();
        }

        await DisposeAllAsync(backends);
    }

    [Fact]
    public async Task Send_RefusedConnection_RetriesOnAnotherEndpointAndSucceeds()
    {
        // Arrange: one live backend and one address where nothing listens (a stopped backend's port).
        var live = await TestBackend.StartAsync("live");
        var dead = await TestBackend.StartAsync("dead");
        var deadUrl = dead.Url;
        await dead.DisposeAsync();
        await using var client = LodestarClient.Create(o => o.Policy = LoadBalancingPolicies.RoundRobin);
        client.Configuration.SetEndpoints("orders", deadUrl, live.Url);

        // Act: POST is not idempotent, but a refused connection never reached a server, so it may be retried.
        for (var i = 0; i < 20; i++)
        {
            using var response = await client.Http.PostAsync("http://orders/orders", new StringContent("{}"));

            // Assert
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("live", response.Headers.GetValues("X-Instance").Single());
        }

        await live.DisposeAsync();
    }

    [Fact]
    public async Task Send_EveryEndpointRefuses_FailsWithLastErrorAfterMaxAttempts()
    {
        var ports = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            var backend = await TestBackend.StartAsync("gone" + i);
            ports.Add(backend.Url);
            await backend.DisposeAsync();
        }

        await using var client = LodestarClient.Create(o => o.MaxAttempts = 3);
        client.Configuration.SetEndpoints("orders", ports.ToArray());

        var error = await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.Http.GetAsync("http://orders/"));
        Assert.Equal(HttpRequestError.ConnectionError, error.HttpRequestError);
        Assert.Equal(3, client.Logs.Entries.Count(e => e.EventId.Name == "RetryingElsewhere") + 1);
    }

    [Fact]
    public async Task Send_ServiceWithZeroEndpoints_FailsFastWithNoEndpointsException()
    {
        await using var client = LodestarClient.Create();
        client.Configuration.Replace([new("Lodestar:Services:orders:Endpoints", "")]);

        // A request that waited for endpoints would end with the resolution timeout's EndpointResolutionException; the
        // empty set is an answer, so the request fails with NoEndpointsException at once.
        var error = await Assert.ThrowsAsync<NoEndpointsException>(() => client.Http.GetAsync("http://orders/"));

        Assert.Equal("orders", error.ServiceName);
        Assert.Contains("'orders' has no endpoints", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Send_UnknownService_FailsWithResolutionErrorNamingTheService()
    {
        await using var client = LodestarClient.Create();

        var error = await Assert.ThrowsAsync<Lodestar.Discovery.EndpointResolutionException>(() => client.Http.GetAsync("http://payments/"));

        Assert.Contains("'payments'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Send_ConfigReload_AddsAndRemovesEndpointsWithoutRestart()
    {
        var a = await TestBackend.StartAsync("a");
        var b = await TestBackend.StartAsync("b");
        await using var client = LodestarClient.Create();
        client.Configuration.SetEndpoints("orders", a.Url);
        Assert.Equal("a", await GetInstanceAsync(client));

        // Add b: both get traffic.
        client.Configuration.SetEndpoints("orders", a.Url, b.Url);
        await Eventually.TrueAsync(async () => await GetInstanceAsync(client) == "b", TimeSpan.FromSeconds(5), "b takes traffic after reload");

        // Remove a: only b from now on.
        client.Configuration.SetEndpoints("orders", b.Url);
        await Eventually.TrueAsync(async () => await GetInstanceAsync(client) == "b" && await GetInstanceAsync(client) == "b", TimeSpan.FromSeconds(5), "a is gone");
        var aBefore = a.Requests;
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal("b", await GetInstanceAsync(client));
        }

        Assert.Equal(aBefore, a.Requests);
        await a.DisposeAsync();
        await b.DisposeAsync();
    }

    [Fact]
    public async Task Send_ServiceBalancingOptionsChange_TheSameClientTakesTheRebuiltRoute()
    {
        // Arrange: the service's balancing options follow configuration through a change token, as a control plane's
        // or a user's IOptionsChangeTokenSource makes them; round robin to begin with.
        var handler = new ScriptedHandler(_ => ScriptedHandler.Status(200));
        await using var host = ResilienceTestHost.Create(
            primaryHandler: handler,
            services: s => s.AddSingleton<IOptionsChangeTokenSource<LoadBalancingOptions>>(sp =>
                new ConfigurationChangeTokenSource<LoadBalancingOptions>(ResilienceTestHost.Service, sp.GetRequiredService<IConfiguration>())));
        host.Configuration.Replace(Settings(LoadBalancingPolicies.RoundRobin));
        await host.GetBalancerAsync();
        var client = host.CreateClient();
        var before = await AuthoritiesAsync(client, handler);

        // Act: the service now hashes on a header; the same client (and handler) sends the next requests.
        host.Configuration.Replace(Settings(LoadBalancingPolicies.RingHash));
        var after = await AuthoritiesAsync(client, handler);

        // Assert: spread over the three endpoints before, all on one after.
        Assert.Equal(3, before);
        Assert.Equal(1, after);

        static KeyValuePair<string, string?>[] Settings(string policy) =>
        [
            new("Lodestar:Services:orders:Endpoints:0", "127.0.0.1:9001"), new("Lodestar:Services:orders:Endpoints:1", "127.0.0.1:9002"),
            new("Lodestar:Services:orders:Endpoints:2", "127.0.0.1:9003"), new("Lodestar:LoadBalancing:Services:orders:Policy", policy),
            new("Lodestar:LoadBalancing:Services:orders:HashKeyHeader", "X-User"),
        ];

        static async Task<int> AuthoritiesAsync(HttpClient client, ScriptedHandler handler)
        {
            var skip = handler.Count;
            for (var i = 0; i < 6; i++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, "http://orders/x");
                request.Headers.Add("X-User", "alice");
                using var response = await client.SendAsync(request);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            return handler.Calls.Skip(skip).Select(c => c.Authority).Distinct().Count();
        }
    }

    [Fact]
    public async Task Send_HttpsPlusHttpScheme_UsesEndpointsHttpScheme()
    {
        var backend = await TestBackend.StartAsync("x");
        await using var client = LodestarClient.Create();
        client.Configuration.Replace([new($"Services:orders:http:0", backend.Address)]);

        using var response = await client.Http.GetAsync("https+http://orders/path?q=1");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal($"http://{backend.Address}/path?q=1", response.RequestMessage!.RequestUri!.ToString());
        await backend.DisposeAsync();
    }

    [Fact]
    public async Task Send_IpLiteralUri_PassesThroughUntouched()
    {
        var backend = await TestBackend.StartAsync("x");
        await using var client = LodestarClient.Create();

        using var response = await client.Http.GetAsync(backend.Url + "/direct");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await backend.DisposeAsync();
    }

    private static async Task<string> GetInstanceAsync(LodestarClient client)
    {
        using var response = await client.Http.GetAsync("http://orders/");
        return response.Headers.GetValues("X-Instance").Single();
    }

    private static async Task<List<TestBackend>> StartBackendsAsync(int count, HttpProtocols protocols = HttpProtocols.Http1AndHttp2)
    {
        var list = new List<TestBackend>();
        for (var i = 0; i < count; i++)
        {
            list.Add(await TestBackend.StartAsync("b" + i, protocols));
        }

        return list;
    }

    private static async Task DisposeAllAsync(IEnumerable<TestBackend> backends)
    {
        foreach (var backend in backends)
        {
            await backend.DisposeAsync();
        }
    }
}
