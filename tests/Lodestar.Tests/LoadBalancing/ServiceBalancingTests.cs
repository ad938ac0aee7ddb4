using Lodestar.Http;
using Lodestar.LoadBalancing;
using Lodestar.Tests.Resilience;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Tests.LoadBalancing;

public sealed class ServiceBalancingTests
{
    private static readonly string[] s_addresses = ["127.0.0.1:5001", "127.0.0.1:5002", "127.0.0.1:5003"];

    [Fact]
    public async Task TryPick_StartThenComplete_CountsInFlightRequestsAndLatency()
    {
        // Arrange
        var time = new FakeTimeProvider();
        await using var host = ResilienceTestHost.Create(timeProvider: time);
        host.SetEndpoints(s_addresses);
        var service = await GetAsync(host);

        // Act
        Assert.True(service.TryPick(default, out var picked));
        var attempt = picked.Start();
        var inFlight = attempt.Endpoint!.InFlight;
        time.Advance(TimeSpan.FromMilliseconds(30));
        var latency = attempt.Complete(EndpointOutcome.Success);

        // Assert
        Assert.Equal(1, inFlight);
        Assert.Equal(0, attempt.Endpoint.InFlight);
        Assert.Equal(1, attempt.Endpoint.Requests);
        Assert.Equal(TimeSpan.FromMilliseconds(30), latency);
        Assert.Equal(TimeSpan.FromMilliseconds(30), attempt.Endpoint.LastLatency);
    }

    [Fact]
    public async Task Complete_GatewayFailuresInARow_EjectsWithinConsecutiveCountAndPicksAvoidIt()
    {
        // Arrange: the default outlier detection ejects after five failures in a row.
        await using var host = ResilienceTestHost.Create();
        host.SetEndpoints(s_addresses);
        var service = await GetAsync(host);
        var bad = service.Endpoints[0];

        // Act
        var reached = 0;
        for (var i = 0; i < 60; i++)
        {
            Assert.True(service.TryPick(default, out var picked));
            var attempt = picked.Start();
            var failed = ReferenceEquals(attempt.Endpoint, bad);
            reached += failed ? 1 : 0;
            attempt.Complete(failed ? EndpointOutcome.GatewayFailure : EndpointOutcome.Success);
        }

        // Assert
        Assert.Equal(5, reached);
        Assert.True(bad.IsEjected);
        Assert.Equal(5, bad.Failures);
    }

    [Fact]
    public async Task Complete_Abandoned_GivesNoVerdictOnTheEndpoint()
    {
        // Arrange
        await using var host = ResilienceTestHost.Create();
        host.SetEndpoints(s_addresses[0]);
        var service = await GetAsync(host);

        // Act
        for (var i = 0; i < 20; i++)
        {
            Assert.True(service.TryPick(default, out var picked));
            picked.Start().Complete(EndpointOutcome.Abandoned);
        }

        // Assert
        var endpoint = service.Endpoints[0];
        Assert.False(endpoint.IsEjected);
        Assert.Equal(0, endpoint.Failures);
        Assert.Equal(0, endpoint.InFlight);
    }

    [Fact]
    public async Task Complete_AbandonedQuickerThanTheEstimate_LeavesThePeakEwmaEstimateAndTheFailureStreak()
    {
        // Arrange: one endpoint that answered in 50 ms, then failed twice.
        var time = new FakeTimeProvider();
        await using var host = ResilienceTestHost.Create(timeProvider: time);
        host.SetEndpoints(s_addresses[0]);
        var service = await GetAsync(host, LoadBalancingPolicies.PeakEwma);
        Assert.True(service.TryPick(default, out var picked));
        picked.Start().Complete(EndpointOutcome.Success, TimeSpan.FromMilliseconds(50));
        for (var i = 0; i < 2; i++)
        {
            Assert.True(service.TryPick(default, out picked));
            picked.Start().Complete(EndpointOutcome.ServerError, TimeSpan.FromMilliseconds(50));
        }

        var endpoint = service.Endpoints[0];
        var before = endpoint.GetLatencyEstimate(time.GetTimestamp());

        // Act: a call the caller gave up after 1 ms (a hedge on another channel won).
        Assert.True(service.TryPick(default, out picked));
        picked.Start().Complete(EndpointOutcome.Abandoned, TimeSpan.FromMilliseconds(1));

        // Assert: a lower bound below the estimate says nothing; it is neither a fast answer nor a success.
        Assert.Equal(before, endpoint.GetLatencyEstimate(time.GetTimestamp()), 9);
        Assert.Equal(2, endpoint.ConsecutiveFailures);
        Assert.Equal(0, endpoint.InFlight);
    }

    [Fact]
    public async Task GetServiceAsync_SameSettingsAsHttpClient_SharesEndpointStates()
    {
        // Arrange
        await using var host = ResilienceTestHost.Create();
        host.SetEndpoints(s_addresses);
        var handlerBalancer = await host.GetBalancerAsync();

        // Act
        var service = await host.Services.GetRequiredService<IServiceBalancing>().GetServiceAsync(ResilienceTestHost.Service,
            clientOptions: new LodestarClientOptions(), clientName: "grpc");

        // Assert: one health stage, so an ejection on one path holds on the other.
        Assert.Equal(handlerBalancer.Endpoints.Count, service.Endpoints.Count);
        Assert.All(service.Endpoints, e => Assert.Contains(handlerBalancer.Endpoints, h => ReferenceEquals(h, e)));
    }

    [Fact]
    public async Task GetServiceAsync_UnknownPolicy_ThrowsNamingPolicy()
    {
        // Arrange
        await using var host = ResilienceTestHost.Create();
        host.SetEndpoints(s_addresses);

        // Act
        var error = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
            await host.Services.GetRequiredService<IServiceBalancing>().GetServiceAsync(ResilienceTestHost.Service, policyName: "fastest"));

        // Assert
        Assert.Contains("'fastest'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TryPick_WarmPicker_AllocatesNothing()
    {
        // Arrange
        await using var host = ResilienceTestHost.Create();
        host.SetEndpoints(s_addresses);
        var service = await GetAsync(host, LoadBalancingPolicies.LeastRequest);
        service.TryPick(default, out _);

        // Act
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            service.TryPick(default, out _);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // Assert
        Assert.Equal(0, allocated);
    }

    [Fact]
    public async Task EndpointAttempt_MisusedLifecycle_Throws()
    {
        // Arrange
        await using var host = ResilienceTestHost.Create();
        host.SetEndpoints(s_addresses);
        var service = await GetAsync(host);
        Assert.True(service.TryPick(default, out var picked));

        // Act and assert
        Assert.Throws<InvalidOperationException>(() => picked.Complete(EndpointOutcome.Success));
        Assert.Throws<InvalidOperationException>(() => picked.Start().Start());
        Assert.Throws<InvalidOperationException>(() => default(EndpointAttempt).Start());
    }

    [Fact]
    public async Task RegisterSetChanged_NewSetThenHealthChange_CalledForTheSetOnlyWithItsPickerInForce()
    {
        // Arrange
        await using var host = ResilienceTestHost.Create();
        host.SetEndpoints(s_addresses);
        var service = await GetAsync(host);
        var before = service.SetVersion;
        var calls = 0;
        var seen = new TaskCompletionSource<(long Version, int Count)>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = service.RegisterSetChanged(() =>
        {
            Interlocked.Increment(ref calls);
            seen.TrySetResult((service.SetVersion, service.Endpoints.Count));
        });

        // Act: a new set, then an ejection (a health change over the same set).
        host.SetEndpoints(s_addresses[0], s_addresses[1]);
        var (version, count) = await seen.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var bad = service.Endpoints[0];
        for (var i = 0; i < 30; i++)
        {
            Assert.True(service.TryPick(default, out var picked));
            var attempt = picked.Start();
            attempt.Complete(ReferenceEquals(attempt.Endpoint, bad) ? EndpointOutcome.GatewayFailure : EndpointOutcome.Success);
        }

        // Assert: called once, after the picker of the new set was in force; the ejection did not call it.
        Assert.True(bad.IsEjected);
        Assert.True(version > before);
        Assert.Equal(2, count);
        Assert.Equal(1, Volatile.Read(ref calls));
    }

    [Fact]
    public async Task RegisterSetChanged_Disposed_NotCalledAgain()
    {
        // Arrange
        await using var host = ResilienceTestHost.Create();
        host.SetEndpoints(s_addresses);
        var service = await GetAsync(host);
        var calls = 0;
        var registration = service.RegisterSetChanged(() => Interlocked.Increment(ref calls));
        var other = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var witness = service.RegisterSetChanged(() => other.TrySetResult());

        // Act
        registration.Dispose();
        host.SetEndpoints(s_addresses[0]);
        await other.Task.WaitAsync(TimeSpan.FromSeconds(10));

        // Assert
        Assert.Equal(0, Volatile.Read(ref calls));
        Assert.Throws<ArgumentNullException>(() => service.RegisterSetChanged(null!));
    }

    private static async Task<BalancedService> GetAsync(ResilienceTestHost host, string policy = LoadBalancingPolicies.RoundRobin)
        => await host.Services.GetRequiredService<IServiceBalancing>().GetServiceAsync(ResilienceTestHost.Service, policyName: policy);
}
