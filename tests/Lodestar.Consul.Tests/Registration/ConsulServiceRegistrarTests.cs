using System.Diagnostics;
using Lodestar.Consul.Internal;
using Lodestar.Consul.Registration.Internal;
using Lodestar.Consul.Tests.Infrastructure;
using Lodestar.Registration;
using Lodestar.Testing;
using Lodestar.Testing.Consul;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace Lodestar.Consul.Tests.Registration;

public sealed class ConsulServiceRegistrarTests(ITestOutputHelper output)
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Register_TtlCheck_SendsRegistrationAndHeartbeatsWellInsideTtl()
    {
        // The registrar runs on a recording clock so the heartbeat cadence is exact, however loaded the machine is.
        // The agent keeps real time; the 30 s TTL cannot lapse on it during the test.
        var clock = new RecordingTimeProvider();
        await using var agent = await FakeConsulAgent.StartAsync();
        await using var host = ConsulClientHost.Create(
            agent, o => o.DeregisterCriticalServiceAfter = TimeSpan.FromSeconds(90), s => s.AddSingleton<TimeProvider>(clock));
        var ttl = TimeSpan.FromSeconds(30);

        await using var handle = await host.Registrar.RegisterAsync(new ServiceRegistration
        {
            ServiceName = "orders",
            InstanceId = "orders-a",
            Host = "127.0.0.1",
            Port = 5001,
            Tags = ["v2"],
            Metadata = new Dictionary<string, string> { ["version"] = "2.3" },
            Ttl = ttl,
        }, CancellationToken.None);

        for (var pass = 1; pass <= 4; pass++)
        {
            Assert.Equal(ttl / 3, await clock.NextFiniteTimerAsync()); // a pass every TTL/3: two may be lost before the check lapses
            clock.Advance(ttl / 3 - TimeSpan.FromMilliseconds(1));
            Assert.Equal(pass - 1, agent.Find("orders-a")!.Passes);
            clock.Advance(TimeSpan.FromMilliseconds(1));
            await Eventually.TrueAsync(() => agent.Find("orders-a")!.Passes == pass, s_timeout, $"heartbeat {pass} reaches the agent");
        }

        var instance = agent.Find("orders-a");
        Assert.NotNull(instance);
        Assert.Equal("ttl", instance.CheckKind);
        Assert.Equal(ttl, instance.Ttl);
        Assert.Equal(TimeSpan.FromSeconds(90), instance.DeregisterCriticalServiceAfter);
        Assert.Equal("passing", instance.Status);
        Assert.Equal(["v2"], instance.Tags);
        Assert.Equal("2.3", instance.Meta["version"]);
        Assert.Equal("http", instance.Meta["scheme"]);
        Assert.Equal(1, instance.Registrations);
    }

    [Fact]
    public async Task Register_HeartbeatsFail_RetriesOnTheBackoffScheduleButNeverLaterThanTheInterval()
    {
        // Arrange: a 30 s TTL (a heartbeat every 10 s), Backoff from 1 s, the jitter at its ceiling, a recording clock.
        var clock = new RecordingTimeProvider();
        await using var agent = await FakeConsulAgent.StartAsync();
        await using var host = ConsulClientHost.Create(agent, o =>
        {
            o.Backoff.InitialDelay = TimeSpan.FromSeconds(1);
            o.Backoff.MaxDelay = TimeSpan.FromSeconds(30);
        });
        var registrar = new ConsulServiceRegistrar(host.Services.GetRequiredService<ConsulApi>(), clock, host.Services.GetRequiredService<ILoggerFactory>(), random: () => 1.0);
        await using var handle = await registrar.RegisterAsync(
            new ServiceRegistration { ServiceName = "orders", InstanceId = "a", Host = "127.0.0.1", Port = 5001, Ttl = TimeSpan.FromSeconds(30) }, CancellationToken.None);
        agent.FailWith500 = true;

        // Act: each failed heartbeat arms the next try.
        var delays = new List<double>();
        for (var i = 0; i < 6; i++)
        {
            var delay = await clock.NextFiniteTimerAsync();
            delays.Add(delay.TotalSeconds);
            agent.FailWith500 = i < 5;
            clock.Advance(delay);
        }

        await Eventually.TrueAsync(() => agent.Find("a")!.Passes == 1, s_timeout, "the heartbeat gets through once the agent recovers");
        var next = await clock.NextFiniteTimerAsync();

        // Assert: the schedule first, then 1 s doubling, capped by the 10 s interval; after a success, the schedule again.
        Assert.Equal([10, 1, 2, 4, 8, 10], delays);
        Assert.Equal(TimeSpan.FromSeconds(10), next);
        Assert.Equal(5, host.Logs.Entries.Count(e => e.EventId.Name == "ConsulHeartbeatFailed"));
    }

    [Fact]
    public async Task Register_HealthCheckPath_RegistersHttpCheckTheAgentRuns()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        await using var backend = await TestBackend.StartAsync("a");
        await using var host = ConsulClientHost.Create(agent, o => o.HttpCheckInterval = TimeSpan.FromMilliseconds(200));

        await using var handle = await host.Registrar.RegisterAsync(new ServiceRegistration
        {
            ServiceName = "orders", Host = "127.0.0.1", Port = backend.Port, HealthCheckPath = "healthz",
        }, CancellationToken.None);
        var id = handle.Registration.EffectiveInstanceId;
        await Eventually.TrueAsync(() => agent.Find(id)?.Status == "passing", s_timeout, "the agent's HTTP check passes");
        backend.Status = 503;
        await Eventually.TrueAsync(() => agent.Find(id)?.Status == "critical", s_timeout, "the agent's HTTP check fails");

        var instance = agent.Find(id)!;
        Assert.Equal("http", instance.CheckKind);
        Assert.Equal($"http://127.0.0.1:{backend.Port}/healthz", instance.HttpUrl);
        Assert.True(backend.Requests > 0);
    }

    [Fact]
    public async Task Register_AgentRestartsWithoutState_RegistersAgainAndClientsSeeItBack()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        await using var registrarHost = ConsulClientHost.Create(agent);
        await using var watcherHost = ConsulClientHost.Create(agent, o => o.WaitTime = TimeSpan.FromSeconds(2));
        await using var handle = await registrarHost.Registrar.RegisterAsync(
            new ServiceRegistration { ServiceName = "orders", Host = "127.0.0.1", Port = 5001, Ttl = TimeSpan.FromSeconds(1) }, CancellationToken.None);
        using var watch = watcherHost.Follow("orders");
        await Eventually.TrueAsync(() => watch.Has(5001), s_timeout, "the instance is visible");

        var oldIndex = agent.CurrentIndex;
        var clock = Stopwatch.StartNew();
        await agent.RestartAsync(resetIndexTo: 3);
        Assert.Null(agent.Find("orders-127.0.0.1-5001"));
        await Eventually.TrueAsync(() => agent.Find("orders-127.0.0.1-5001") is not null, s_timeout, "the registrar registers again");
        var back = clock.Elapsed;
        // A query parked with the old index returns, then the watcher blocks on an index the agent issued after the restart
        // and sees the instance. Indexes from before the restart are above the fake's initial index; the new one is 4 after
        // the registration, or a little higher if a late heartbeat let the TTL check lapse and pass again on a loaded machine.
        await Eventually.TrueAsync(
            () => watch.Has(5001) && agent.Requests.Any(r => r.Path == "/v1/health/service/orders" && r.Index > 3 && r.Index < FakeConsulAgent.InitialIndex),
            s_timeout, "the watcher follows the reset index and sees the instance after the restart");

        output.WriteLine($"registered again {back.TotalMilliseconds:0} ms after the agent restart (TTL 1 s, heartbeat every 333 ms)");
        output.WriteLine($"indexes the watcher blocked on: {string.Join(", ", agent.Requests.Where(r => r.Path == "/v1/health/service/orders").Select(r => r.Index))} (old index {oldIndex})");
        Assert.Contains(registrarHost.Logs.Entries, e => e.EventId.Name == "ConsulRegistrationForgotten");
        await Eventually.TrueAsync(() => ((ConsulRegistrationHandle)handle).Reregistrations == 1, s_timeout, "counted once");
    }

    [Fact]
    public async Task Register_HttpCheckAndAgentRestarts_NoticesByLookupAndRegistersAgain()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        await using var host = ConsulClientHost.Create(agent);
        await using var handle = await host.Registrar.RegisterAsync(new ServiceRegistration
        {
            ServiceName = "orders", Host = "127.0.0.1", Port = 5001, HealthCheckPath = "/healthz", Ttl = TimeSpan.FromMilliseconds(600),
        }, CancellationToken.None);

        await agent.RestartAsync();
        await Eventually.TrueAsync(() => agent.Find("orders-127.0.0.1-5001") is not null, s_timeout, "registered again");

        Assert.Contains(agent.Requests, r => r.Method == "GET" && r.Path == "/v1/agent/service/orders-127.0.0.1-5001");
    }

    [Fact]
    public async Task Register_HeartbeatsStop_GoesCriticalThenConsulRemovesIt()
    {
        // The agent runs on a fake clock that stands still until the heartbeats stop, so every heartbeat passes the
        // check at the same instant and the TTL runs from the moment the registrar was abandoned, however loaded the
        // machine is. The registrar and the watcher keep real time.
        var time = new FakeTimeProvider();
        await using var agent = await FakeConsulAgent.StartAsync(time);
        await using var registrarHost = ConsulClientHost.Create(agent, o => o.DeregisterCriticalServiceAfter = TimeSpan.FromSeconds(1));
        await using var watcherHost = ConsulClientHost.Create(agent);
        using var watch = watcherHost.Follow("orders");
        var handle = (ConsulRegistrationHandle)await registrarHost.Registrar.RegisterAsync(
            new ServiceRegistration { ServiceName = "orders", Host = "127.0.0.1", Port = 5001, Ttl = TimeSpan.FromSeconds(1) }, CancellationToken.None);
        await Eventually.TrueAsync(() => watch.Has(5001), s_timeout, "visible");
        await Eventually.TrueAsync(() => agent.Find("orders-127.0.0.1-5001")?.Passes > 0, s_timeout, "a heartbeat passed the check");

        await handle.AbandonAsync(); // the process hangs or crashes: no heartbeats, no deregistration
        var abandoned = time.GetTimestamp();
        Assert.Equal("passing", agent.Find("orders-127.0.0.1-5001")?.Status);

        await Eventually.TrueAdvancingAsync(time, agent.ReaperInterval, () => !watch.Has(5001), s_timeout, "gone from ?passing after the TTL");
        var gone = time.GetElapsedTime(abandoned);
        Assert.Equal("critical", agent.Find("orders-127.0.0.1-5001")?.Status);
        await Eventually.TrueAdvancingAsync(
            time, agent.ReaperInterval, () => agent.Find("orders-127.0.0.1-5001") is null, s_timeout, "removed after DeregisterCriticalServiceAfter");
        var removed = time.GetElapsedTime(abandoned);

        output.WriteLine($"on the agent's clock: left the passing set {gone.TotalMilliseconds:0} ms after heartbeats stopped (TTL 1 s); removed {removed.TotalMilliseconds:0} ms after");
        Assert.True(gone > TimeSpan.FromSeconds(1), "not before the TTL has run out");
        Assert.True(removed > TimeSpan.FromSeconds(2), "not before DeregisterCriticalServiceAfter has run out after the TTL");
    }

    [Fact]
    public async Task DeregisterAsync_Handle_RemovesInstanceAndWatchersSeeIt()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        await using var host = ConsulClientHost.Create(agent);
        using var watch = host.Follow("orders");
        var handle = await host.Registrar.RegisterAsync(new ServiceRegistration { ServiceName = "orders", Host = "127.0.0.1", Port = 5001 }, CancellationToken.None);
        await Eventually.TrueAsync(() => watch.Has(5001), s_timeout, "visible");

        await handle.DeregisterAsync(CancellationToken.None);
        await handle.DisposeAsync();

        await Eventually.TrueAsync(() => !watch.Has(5001), s_timeout, "gone");
        Assert.Null(agent.Find("orders-127.0.0.1-5001"));
        Assert.Single(agent.Requests, r => r.Path == "/v1/agent/service/deregister/orders-127.0.0.1-5001");
    }

    [Fact]
    public async Task DisposeAsync_Handle_Deregisters()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        await using var host = ConsulClientHost.Create(agent);
        var handle = await host.Registrar.RegisterAsync(new ServiceRegistration { ServiceName = "orders", InstanceId = "x", Host = "127.0.0.1", Port = 5001 }, CancellationToken.None);

        await handle.DisposeAsync();

        Assert.Null(agent.Find("x"));
    }

    [Fact]
    public async Task DeregisterAsync_ByIdForLeftover_RemovesIt()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("leftover", "orders", "127.0.0.1", 5001);
        await using var host = ConsulClientHost.Create(agent);

        await host.Registrar.DeregisterAsync("orders", "leftover", CancellationToken.None);
        await host.Registrar.DeregisterAsync("orders", "leftover", CancellationToken.None); // unknown: already gone, not an error

        Assert.Null(agent.Find("leftover"));
    }

    [Fact]
    public async Task Register_AgentDown_FailsWithErrorNamingTheAgent()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        await using var host = ConsulClientHost.Create(agent, o => o.Token = "s3cr3t-token-value");
        await agent.StopAsync();

        var error = await Assert.ThrowsAsync<ConsulException>(() => host.Registrar.RegisterAsync(
            new ServiceRegistration { ServiceName = "orders", Host = "127.0.0.1", Port = 5001 }, CancellationToken.None));

        Assert.Contains(agent.Address, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cr3t-token-value", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Register_AgentOutageShorterThanTtl_InstanceStaysAndHeartbeatsResume()
    {
        // The registrar runs on a recording clock, so the failed heartbeat and the retry after it happen when the test
        // says, however loaded the machine is. The agent keeps real time; its 30 s TTL cannot lapse during the test.
        var clock = new RecordingTimeProvider();
        await using var agent = await FakeConsulAgent.StartAsync();
        await using var host = ConsulClientHost.Create(agent, services: s => s.AddSingleton<TimeProvider>(clock));
        await using var handle = await host.Registrar.RegisterAsync(
            new ServiceRegistration { ServiceName = "orders", InstanceId = "a", Host = "127.0.0.1", Port = 5001, Ttl = TimeSpan.FromSeconds(30) }, CancellationToken.None);

        agent.FailWith500 = true;
        clock.Advance(await clock.NextFiniteTimerAsync());
        var retry = await clock.NextFiniteTimerAsync(); // armed once the failed heartbeat has been handled
        agent.FailWith500 = false;
        clock.Advance(retry);
        await Eventually.TrueAsync(() => agent.Find("a")!.Passes == 1, s_timeout, "heartbeats resume");

        var instance = agent.Find("a")!;
        Assert.Equal("passing", instance.Status);
        Assert.Equal(1, instance.Registrations);
        Assert.True(retry < TimeSpan.FromSeconds(10), $"the retry after a failed heartbeat comes before the next scheduled one, not {retry}");
        Assert.Single(host.Logs.Entries, e => e.EventId.Name == "ConsulHeartbeatFailed");
    }

    [Fact]
    public void Registrar_FromDependencyInjection_IsNamedConsulAndAddedOnce()
    {
        var services = new ServiceCollection();
        services.AddLodestarCore().AddConsul().AddConsul();
        using var provider = services.BuildServiceProvider();

        var registrar = Assert.Single(provider.GetServices<IServiceRegistrar>());
        Assert.Equal("consul", registrar.Name);
        Assert.Single(provider.GetServices<Lodestar.Discovery.IEndpointSourceProvider>(), p => p.Name == "consul");
    }
}
