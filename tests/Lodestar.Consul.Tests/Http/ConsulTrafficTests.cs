using System.Diagnostics;
using Lodestar.Consul.Registration.Internal;
using Lodestar.Consul.Tests.Infrastructure;
using Lodestar.Discovery;
using Lodestar.Registration;
using Lodestar.Testing;
using Lodestar.Testing.Consul;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Lodestar.Consul.Tests.Http;

/// <summary>End to end: real Kestrel backends registered in the fake agent, an HttpClient balancing over what Consul says.</summary>
public sealed class ConsulTrafficTests(ITestOutputHelper output)
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Send_RegistrarStopsHeartbeating_TrafficLeavesItAfterTtl()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var processA = ConsulClientHost.Create(agent);
        await using var processB = ConsulClientHost.Create(agent);
        // a's TTL is long so that a heartbeat delayed on a loaded machine cannot take the one remaining instance away.
        await using var handleA = await processA.Registrar.RegisterAsync(Registration(a, TimeSpan.FromSeconds(30)), CancellationToken.None);
        var handleB = (ConsulRegistrationHandle)await processB.Registrar.RegisterAsync(Registration(b, TimeSpan.FromSeconds(1)), CancellationToken.None);
        await using var caller = CreateCaller(agent, out var client);

        await Eventually.TrueAsync(async () => { await SendAsync(client); return a.Requests > 0 && b.Requests > 0; }, s_timeout, "both instances take traffic");
        var clock = Stopwatch.StartNew();
        await handleB.AbandonAsync(); // b's registrar dies; b itself still answers
        await Eventually.TrueAsync(() => agent.Find(handleB.Registration.EffectiveInstanceId)?.Status == "critical", s_timeout, "b's TTL check goes critical");
        var critical = clock.Elapsed;
        await Eventually.TrueAsync(() => CallerSeesOnly(caller, a.Port), s_timeout, "the caller's watch drops b");
        var bBefore = b.Requests;
        var aBefore = a.Requests;
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal("a", await SendAsync(client));
        }

        output.WriteLine($"b went critical {critical.TotalMilliseconds:0} ms after its heartbeats stopped (TTL 1 s)");
        Assert.Equal(bBefore, b.Requests);
        Assert.Equal(aBefore + 20, a.Requests);
    }

    [Fact]
    public async Task Send_GracefulDeregistration_TrafficStopsReachingIt()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var registrar = ConsulClientHost.Create(agent);
        await using var handleA = await registrar.Registrar.RegisterAsync(Registration(a, TimeSpan.FromSeconds(30)), CancellationToken.None);
        var handleB = await registrar.Registrar.RegisterAsync(Registration(b, TimeSpan.FromSeconds(30)), CancellationToken.None);
        await using var caller = CreateCaller(agent, out var client);
        await Eventually.TrueAsync(async () => { await SendAsync(client); return a.Requests > 0 && b.Requests > 0; }, s_timeout, "both instances take traffic");

        await handleB.DisposeAsync();
        await Eventually.TrueAsync(() => CallerSeesOnly(caller, a.Port), s_timeout, "the caller's watch drops b");
        var bBefore = b.Requests;
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal("a", await SendAsync(client));
        }

        Assert.Equal(bBefore, b.Requests);
    }

    /// <summary>
    /// Reaction time from a registry change to the first request that follows it, the figure in docs/benchmarks.md (Consul).
    /// Run: dotnet test tests/Lodestar.Consul.Tests --filter "FullyQualifiedName~ReactionTime" --logger "console;verbosity=detailed"
    /// </summary>
    [Fact]
    public async Task ReactionTime_RegistryChangeToTraffic_PrintsFigures()
    {
        const int Rounds = 15;
        await using var agent = await FakeConsulAgent.StartAsync();
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        agent.Register("a", "orders", "127.0.0.1", a.Port);
        await using var caller = CreateCaller(agent, out var client);
        Assert.Equal("a", await SendAsync(client));
        var added = new List<double>();
        var removed = new List<double>();

        for (var round = 0; round < Rounds; round++)
        {
            // Added: time from the registry change to the first request the new instance receives.
            var clock = Stopwatch.StartNew();
            agent.Register("b", "orders", "127.0.0.1", b.Port);
            added.Add(await MeasureAsync(client, clock, hit => hit == "b"));

            // Removed: time from the change to the first request after which the instance never receives another.
            clock.Restart();
            agent.SetStatus("b", "critical");
            var lastB = 0.0;
            var sinceLastB = 0;
            for (var i = 0; i < 5_000 && sinceLastB < 200 && clock.Elapsed < s_timeout; i++)
            {
                if (await SendAsync(client) == "b")
                {
                    lastB = clock.Elapsed.TotalMilliseconds;
                    sinceLastB = 0;
                }
                else
                {
                    sinceLastB++;
                }
            }

            Assert.Equal(200, sinceLastB);
            removed.Add(lastB);
            agent.Deregister("b");
        }

        output.WriteLine($"consul reaction time over {Rounds} rounds (fake agent on loopback, blocking query parked, requests back to back):");
        output.WriteLine($"  instance added   -> first request to it:      median {Percentile(added, 0.5):0.0} ms, p90 {Percentile(added, 0.9):0.0} ms, max {added.Max():0.0} ms");
        output.WriteLine($"  instance critical-> last request to it before: median {Percentile(removed, 0.5):0.0} ms, p90 {Percentile(removed, 0.9):0.0} ms, max {removed.Max():0.0} ms");
    }

    private static async Task<double> MeasureAsync(HttpClient client, Stopwatch clock, Func<string, bool> followed)
    {
        for (var i = 0; i < 20_000 && clock.Elapsed < s_timeout; i++)
        {
            if (followed(await SendAsync(client)))
            {
                return clock.Elapsed.TotalMilliseconds;
            }
        }

        throw new TimeoutException("traffic did not follow the registry change");
    }

    private static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
    }

    private static ServiceRegistration Registration(TestBackend backend, TimeSpan ttl)
        => new() { ServiceName = "orders", InstanceId = "orders-" + backend.Name, Host = "127.0.0.1", Port = backend.Port, Ttl = ttl };

    private static ServiceProvider CreateCaller(FakeConsulAgent agent, out HttpClient client)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddLodestarCore().AddConsul(o =>
        {
            o.Address = agent.Address;
            o.Backoff.InitialDelay = TimeSpan.FromMilliseconds(50);
            o.Backoff.MaxDelay = TimeSpan.FromMilliseconds(500);
        });
        services.AddHttpClient("orders").AddLodestar(o => o.Source = "consul");
        var provider = services.BuildServiceProvider();
        client = provider.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        return provider;
    }

    // How quickly the caller follows is measured by ReactionTime_RegistryChangeToTraffic_PrintsFigures; these tests check
    // that once it has, no request reaches the instance that left.
    private static bool CallerSeesOnly(ServiceProvider caller, int port)
    {
        var set = caller.GetRequiredService<IEndpointResolver>().GetEndpointsAsync("orders", "consul");
        return set.IsCompletedSuccessfully && set.Result.Endpoints.Select(e => e.Port).SequenceEqual([port]);
    }

    private static async Task<string> SendAsync(HttpClient client)
    {
        using var response = await client.GetAsync("http://orders/");
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadAsStringAsync();
    }
}
