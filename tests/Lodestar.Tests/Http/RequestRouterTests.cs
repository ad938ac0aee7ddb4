using System.Net;
using Lodestar.Http;
using Lodestar.LoadBalancing;
using Lodestar.Resilience.Internal;
using Lodestar.Testing;
using Lodestar.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace Lodestar.Tests.Http;

public sealed class RequestRouterTests
{
    [Fact]
    public async Task Send_RouterChoosesAnotherService_GoesToThatServicesEndpoints()
    {
        // Arrange: /v2 goes to service orders-v2, anything else stays with orders.
        await using var stable = await TestBackend.StartAsync("stable");
        await using var canary = await TestBackend.StartAsync("canary");
        var router = new DelegateRouter((request, _) => request.RequestUri!.AbsolutePath.StartsWith("/v2", StringComparison.Ordinal) ? new RequestRoute("orders-v2") : null);
        await using var client = LodestarClient.Create(services: s => s.AddSingleton<IRequestRouter>(router));
        SetEndpoints(client, ("orders", stable.Url), ("orders-v2", canary.Url));

        // Act
        using var first = await client.Http.GetAsync("http://orders/v1/items");
        using var second = await client.Http.GetAsync("http://orders/v2/items");

        // Assert
        Assert.Equal("stable", first.Headers.GetValues("X-Instance").Single());
        Assert.Equal("canary", second.Headers.GetValues("X-Instance").Single());
        Assert.Equal(["orders", "orders"], router.Services);
    }

    [Fact]
    public async Task Send_RouteRetryPolicy_RetriesTheRoutesStatusCodesUpToItsAttempts()
    {
        // Arrange: every backend answers 500, which the client's own policy (502, 503, 504) does not retry.
        var backends = new[] { await TestBackend.StartAsync("a"), await TestBackend.StartAsync("b"), await TestBackend.StartAsync("c") };
        foreach (var backend in backends)
        {
            backend.Status = 500;
        }

        var policy = new RouteRetryPolicy(2, [500], TimeSpan.Zero, TimeSpan.Zero);
        var router = new DelegateRouter((request, service) => request.RequestUri!.AbsolutePath == "/retried" ? new RequestRoute(service) { Retry = policy } : null);
        await using var client = LodestarClient.Create(o => o.MaxAttempts = 3, services: s => s.AddSingleton<IRequestRouter>(router));
        client.Configuration.SetEndpoints("orders", backends.Select(b => b.Url).ToArray());

        // Act
        using var plain = await client.Http.GetAsync("http://orders/plain");
        var afterPlain = backends.Sum(b => b.Requests);
        using var retried = await client.Http.GetAsync("http://orders/retried");
        var afterRetried = backends.Sum(b => b.Requests);

        // Assert: the client's policy sends once; the route's sends twice (its two attempts), not three.
        Assert.Equal(HttpStatusCode.InternalServerError, plain.StatusCode);
        Assert.Equal(HttpStatusCode.InternalServerError, retried.StatusCode);
        Assert.Equal(1, afterPlain);
        Assert.Equal(3, afterRetried);
        foreach (var backend in backends)
        {
            await backend.DisposeAsync();
        }
    }

    [Fact]
    public async Task Send_RouteTimeout_FailsAtTheRoutesDeadlineNamingIt()
    {
        // Arrange: the backend holds the request until released; the client has no deadline of its own.
        await using var backend = await TestBackend.StartAsync("slow");
        backend.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var router = new DelegateRouter((_, service) => new RequestRoute(service) { Timeout = TimeSpan.FromMilliseconds(300) });
        await using var client = LodestarClient.Create(services: s => s.AddSingleton<IRequestRouter>(router));
        client.Configuration.SetEndpoints("orders", backend.Url);

        // Act
        var error = await Assert.ThrowsAsync<TaskCanceledException>(() => client.Http.GetAsync("http://orders/slow"));
        backend.Gate.SetResult();

        // Assert
        Assert.Contains("deadline of 300 ms", error.Message, StringComparison.Ordinal);
        Assert.IsType<TimeoutException>(error.InnerException);
    }

    [Fact]
    public async Task Send_RouteHashKey_PinsRequestsWithTheSameKeyToOneEndpoint()
    {
        // Arrange: ring hash with the key from the route (the x-user header); without a key ring hash picks at random.
        var backends = new[] { await TestBackend.StartAsync("a"), await TestBackend.StartAsync("b"), await TestBackend.StartAsync("c") };
        var router = new DelegateRouter((request, service) => new RequestRoute(service)
        {
            HashKey = request.Headers.TryGetValues("x-user", out var values) ? values.Single() : null,
        });
        await using var client = LodestarClient.Create(o => o.Policy = LoadBalancingPolicies.RingHash, services: s => s.AddSingleton<IRequestRouter>(router));
        client.Configuration.SetEndpoints("orders", backends.Select(b => b.Url).ToArray());

        // Act
        var instances = new HashSet<string>();
        for (var i = 0; i < 30; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "http://orders/cart");
            request.Headers.Add("x-user", "alice");
            using var response = await client.Http.SendAsync(request);
            instances.Add(response.Headers.GetValues("X-Instance").Single());
        }

        var unkeyed = new HashSet<string>();
        for (var i = 0; i < 60; i++)
        {
            using var response = await client.Http.GetAsync("http://orders/cart");
            unkeyed.Add(response.Headers.GetValues("X-Instance").Single());
        }

        // Assert
        Assert.Single(instances);
        Assert.True(unkeyed.Count > 1, "requests without a key spread over the endpoints");
        foreach (var backend in backends)
        {
            await backend.DisposeAsync();
        }
    }

    [Fact]
    public async Task Send_ServiceOptionsChangeThroughTokenSource_NextRequestUsesTheNewPolicy()
    {
        // Arrange: the service's policy comes from a named options source that can announce a change.
        await using var backend = await TestBackend.StartAsync("only");
        var policy = LoadBalancingPolicies.RoundRobin;
        var changes = new NamedChangeSource<LoadBalancingOptions>("orders");
        await using var client = LodestarClient.Create(services: s =>
        {
            s.Configure<LoadBalancingOptions>("orders", o => o.Policy = policy);
            s.AddSingleton<IOptionsChangeTokenSource<LoadBalancingOptions>>(changes);
        });
        client.Configuration.SetEndpoints("orders", backend.Url);
        var registry = client.Services.GetRequiredService<ResilienceRegistry>();
        var clientOptions = client.Services.GetRequiredService<IOptionsMonitor<LodestarClientOptions>>().Get("orders");
        (await client.Http.GetAsync("http://orders/")).Dispose();
        var before = await registry.GetRouteAsync("orders", "orders", clientOptions, default);

        // Act
        policy = LoadBalancingPolicies.LeastRequest;
        changes.Fire();
        using var response = await client.Http.GetAsync("http://orders/");
        var after = await registry.GetRouteAsync("orders", "orders", clientOptions, default);

        // Assert: a new balancer with the new policy; the client's resilience state carried over.
        Assert.Equal(LoadBalancingPolicies.RoundRobin, before.Balancer.PolicyName);
        Assert.Equal(LoadBalancingPolicies.LeastRequest, after.Balancer.PolicyName);
        Assert.Same(before.Resilience, after.Resilience);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public void RouteRetryPolicy_AttemptsOutOfRange_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RouteRetryPolicy(0, [503], TimeSpan.Zero, TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RouteRetryPolicy(11, [503], TimeSpan.Zero, TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RouteRetryPolicy(2, [700], TimeSpan.Zero, TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RouteRetryPolicy(2, [503], TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(10)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RequestRoute("orders") { Timeout = TimeSpan.FromSeconds(-1) });
        Assert.Throws<ArgumentException>(() => new RequestRoute(""));
    }

    private static void SetEndpoints(LodestarClient client, params (string Service, string Url)[] endpoints)
        => client.Configuration.Replace(endpoints.Select(e => new KeyValuePair<string, string?>($"Lodestar:Services:{e.Service}:Endpoints:0", e.Url)));

    private sealed class DelegateRouter(Func<HttpRequestMessage, string, RequestRoute?> route) : IRequestRouter
    {
        private readonly List<string> _services = [];

        public IReadOnlyList<string> Services
        {
            get
            {
                lock (_services)
                {
                    return [.. _services];
                }
            }
        }

        public ValueTask<RequestRoute?> RouteAsync(HttpRequestMessage request, string serviceName, string clientName, CancellationToken cancellationToken)
        {
            lock (_services)
            {
                _services.Add(serviceName);
            }

            return new ValueTask<RequestRoute?>(route(request, serviceName));
        }
    }

    private sealed class NamedChangeSource<TOptions>(string name) : IOptionsChangeTokenSource<TOptions>
    {
        private CancellationTokenSource _cts = new();

        public string Name => name;

        public IChangeToken GetChangeToken() => new CancellationChangeToken(_cts.Token);

        public void Fire()
        {
            var previous = Interlocked.Exchange(ref _cts, new CancellationTokenSource());
            previous.Cancel();
        }
    }
}
