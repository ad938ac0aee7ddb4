using Lodestar.Health;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Tests.Health;

public sealed class ActiveHealthCheckerTimerTests
{
    [Fact]
    public void Start_TimerFiresBeforeCreateTimerReturns_FirstRoundReArmsTheTimer()
    {
        // Arrange: a fake clock runs a timer due at once inside CreateTimer, before the checker has stored it.
        var clock = new FakeTimeProvider();
        var factory = new ScriptedProbeFactory();
        var checks = new HealthCheckOptions { Enabled = true, Protocol = ScriptedProbeFactory.Name, Interval = TimeSpan.FromSeconds(5), IntervalJitter = TimeSpan.Zero };
        var settings = Lodestar.Health.Internal.HealthSettings.Create(new OutlierDetectionOptions { Enabled = false }, checks, new CircuitBreakerOptions());
        using var stage = new Lodestar.Health.Internal.HealthStage("svc", null, settings, null, clock, Lodestar.Internal.RandomSource.Shared);
        stage.Update(Lodestar.Endpoints.EndpointSet.Create("svc", "test", [Lodestar.Endpoints.DiscoveredEndpoint.Create("127.0.0.1", 9101)], 1, DateTimeOffset.UnixEpoch));

        // Act: the first round runs as the checker starts; the interval then brings the second.
        stage.Start(new SilentResolver(), factory);
        var afterStart = factory.Single.Probes("127.0.0.1:9101");
        clock.Advance(TimeSpan.FromSeconds(5));

        // Assert
        Assert.Equal(1, afterStart);
        Assert.Equal(2, factory.Single.Probes("127.0.0.1:9101"));
    }

    /// <summary>A resolver that never sends a set: the test applies sets to the stage itself.</summary>
    private sealed class SilentResolver : Lodestar.Discovery.IEndpointResolver
    {
        public ValueTask<Lodestar.Endpoints.EndpointSet> GetEndpointsAsync(string serviceName, string? sourceName = null, CancellationToken cancellationToken = default)
            => throw new NotSupportedException();

        public IDisposable Watch(string serviceName, string? sourceName, Action<Lodestar.Endpoints.EndpointSet> onChange, Action<Exception>? onError = null)
            => new CancellationTokenSource();
    }
}
