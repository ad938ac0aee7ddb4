using System.Diagnostics.Metrics;
using Lodestar.Diagnostics.Internal;
using Lodestar.Endpoints;
using Lodestar.Health;
using Lodestar.Health.Internal;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Lodestar.Tests.Health;

/// <summary>A health stage over fake addresses with a round-robin balancer on it, on a clock the test controls.</summary>
internal sealed class HealthFixture : IDisposable
{
    public HealthFixture(HealthStage stage, ServiceBalancer balancer)
    {
        Stage = stage;
        Balancer = balancer;
    }

    public HealthStage Stage { get; }

    public ServiceBalancer Balancer { get; }

    public IReadOnlyList<EndpointState> Endpoints => Balancer.Endpoints;

    public void Dispose()
    {
        Balancer.Dispose();
        Stage.Dispose();
    }
}

/// <summary>Builds health stages and reports outcomes to them.</summary>
internal static class HealthTestKit
{
    public static readonly LodestarMetrics Metrics = new(new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>());

    public static HealthFixture CreateHealth(TimeProvider time, int endpoints, Action<OutlierDetectionOptions>? outlier = null,
        Action<CircuitBreakerOptions>? breaker = null, RandomSource? random = null, double panicThreshold = 0.5, ILogger? logger = null)
    {
        var outlierOptions = new OutlierDetectionOptions();
        outlier?.Invoke(outlierOptions);
        var breakerOptions = new CircuitBreakerOptions();
        breaker?.Invoke(breakerOptions);
        var settings = HealthSettings.Create(outlierOptions, new HealthCheckOptions(), breakerOptions);
        var stage = new HealthStage("svc", null, settings, null, time, random ?? RandomSource.Shared, Metrics, logger ?? NullLogger.Instance);
        var balancer = new ServiceBalancer(stage, new RoundRobinPolicy(RandomSource.Shared), panicThreshold, RandomSource.Shared);
        stage.Update(EndpointSet.Create("svc", "test",
            Enumerable.Range(1, endpoints).Select(i => DiscoveredEndpoint.Create("127.0.0.1", 9000 + i)), 1, DateTimeOffset.UnixEpoch));
        return new HealthFixture(stage, balancer);
    }

    public static void Report(HealthFixture health, EndpointState state, AttemptOutcome outcome, int times = 1)
    {
        for (var i = 0; i < times; i++)
        {
            var ticket = HealthStage.TryAdmit(state);
            health.Stage.OnAttemptCompleted(state, ticket, outcome);
        }
    }
}
