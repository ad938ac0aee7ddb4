using Lodestar.Diagnostics;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Health;
using Lodestar.Health.Internal;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Lodestar.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Tests.Diagnostics;

/// <summary>Lodestar in a container on a fake clock, fed by a push source, with the inspector and a balancer for "orders".</summary>
internal sealed class InspectorFixture : IAsyncDisposable
{
    private InspectorFixture(ServiceProvider services, FakeTimeProvider clock, PushSourceProvider source)
    {
        Services = services;
        Clock = clock;
        Source = source;
        Inspector = services.GetRequiredService<ILodestarInspector>();
    }

    public ServiceProvider Services { get; }

    public FakeTimeProvider Clock { get; }

    public PushSourceProvider Source { get; }

    public ILodestarInspector Inspector { get; }

    public ServiceBalancer Balancer { get; private set; } = null!;

    public static async Task<InspectorFixture> StartAsync(DiscoveredEndpoint[] endpoints, Action<OutlierDetectionOptions>? outlier = null,
        Action<CircuitBreakerOptions>? breaker = null, Action<LoadBalancingOptions>? loadBalancing = null)
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var source = new PushSourceProvider();
        var collection = new ServiceCollection();
        collection.AddSingleton<TimeProvider>(clock);
        collection.AddLogging();
        collection.AddLodestarCore();
        collection.AddSingleton<IEndpointSourceProvider>(source);
        collection.Configure<OutlierDetectionOptions>("orders", o => outlier?.Invoke(o));
        collection.Configure<CircuitBreakerOptions>("orders", o => breaker?.Invoke(o));
        collection.Configure<LoadBalancingOptions>("orders", o => loadBalancing?.Invoke(o));
        var fixture = new InspectorFixture(collection.BuildServiceProvider(), clock, source);
        var balancer = fixture.Services.GetRequiredService<BalancerRegistry>().GetAsync("orders", "push", null, CancellationToken.None).AsTask();
        await source.PublishAsync("orders", endpoints);
        fixture.Balancer = await balancer.WaitAsync(TimeSpan.FromSeconds(10));
        return fixture;
    }

    public EndpointState State(string address) => Balancer.Stage.Snapshot.Endpoints.Single(e => e.Endpoint.Address == address);

    /// <summary>Reports attempts the way the request pipeline does: counters, then outlier detection and breaker.</summary>
    public void Report(string address, AttemptOutcome outcome, int times = 1, TimeSpan? latency = null)
    {
        var state = State(address);
        for (var i = 0; i < times; i++)
        {
            var ticket = HealthStage.TryAdmit(state);
            var counted = state.OnRequestStarted();
            state.OnRequestCompleted(outcome == AttemptOutcome.Success, latency ?? TimeSpan.FromMilliseconds(10), counted);
            Balancer.Stage.OnAttemptCompleted(state, ticket, outcome);
        }
    }

    /// <summary>Advances the clock in steps, so that every timer due on the way fires in order.</summary>
    public void Advance(TimeSpan total, TimeSpan? step = null)
    {
        var by = step ?? TimeSpan.FromSeconds(1);
        for (var elapsed = TimeSpan.Zero; elapsed < total; elapsed += by)
        {
            Clock.Advance(by);
        }
    }

    public EndpointInspection Endpoint(string address) => Inspector.Inspect("orders").Services.Single().Endpoints.Single(e => e.Address == address);

    public async ValueTask DisposeAsync() => await Services.DisposeAsync();
}
