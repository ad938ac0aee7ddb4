using System.Diagnostics.Metrics;
using Lodestar.Diagnostics.Internal;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Health;
using Lodestar.Health.Internal;
using Lodestar.Internal;
using Lodestar.LoadBalancing.Internal;
using Lodestar.Resilience;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Lodestar.Tests.Health;

/// <summary>Builds a balancer over fake addresses and its health view, on a clock the test controls.</summary>
internal static class HealthTestKit
{
    private static readonly LodestarMetrics s_metrics = new(new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>());

    public static ServiceBalancer Balancer(TimeProvider time, int endpoints, double panicThreshold = 0.5)
    {
        var balancer = new ServiceBalancer("svc", new RoundRobinPolicy(RandomSource.Shared), time, panicThreshold, RandomSource.Shared);
        balancer.Update(EndpointSet.Create("svc", "test",
            Enumerable.Range(1, endpoints).Select(i => DiscoveredEndpoint.Create("127.0.0.1", 9000 + i)), 1, DateTimeOffset.UnixEpoch));
        return balancer;
    }

    public static ServiceHealth CreateHealth(ServiceBalancer balancer, TimeProvider time, Action<OutlierDetectionOptions>? outlier = null,
        Action<CircuitBreakerOptions>? breaker = null, RandomSource? random = null)
    {
        var outlierOptions = new OutlierDetectionOptions();
        outlier?.Invoke(outlierOptions);
        var breakerOptions = new CircuitBreakerOptions();
        breaker?.Invoke(breakerOptions);
        return new ServiceHealth(balancer, outlierOptions, breakerOptions, new HealthCheckOptions(), new NoResolver(), null, time,
            random ?? RandomSource.Shared, s_metrics, NullLoggerFactory.Instance);
    }

    public static void Report(ServiceHealth health, Lodestar.LoadBalancing.EndpointState state, AttemptOutcome outcome, int times = 1)
    {
        var endpointHealth = health.Get(state);
        for (var i = 0; i < times; i++)
        {
            var ticket = ServiceHealth.TryAdmit(endpointHealth);
            health.OnAttemptCompleted(endpointHealth, ticket, outcome);
        }
    }

    private sealed class NoResolver : IEndpointResolver
    {
        public ValueTask<EndpointSet> GetEndpointsAsync(string serviceName, string? sourceName = null, CancellationToken cancellationToken = default)
            => throw new NotSupportedException();

        public IDisposable Watch(string serviceName, string? sourceName, Action<EndpointSet> onChange, Action<Exception>? onError = null)
            => throw new NotSupportedException();
    }
}
