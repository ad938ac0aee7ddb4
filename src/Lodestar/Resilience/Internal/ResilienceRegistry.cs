using System.Collections.Concurrent;
using Lodestar.Diagnostics.Internal;
using Lodestar.Discovery;
using Lodestar.Health.Internal;
using Lodestar.Http;
using Lodestar.Internal;
using Lodestar.LoadBalancing.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Resilience.Internal;

/// <summary>
/// Owns the health view of every service balancer (<see cref="ServiceHealth"/>, shared by the clients that use the
/// balancer; the first client's options configure it) and each client's per-service <see cref="ServiceResilience"/>.
/// Both are created on first use and live until the container is disposed, like the balancers themselves.
/// </summary>
internal sealed class ResilienceRegistry : IDisposable
{
    private readonly IEndpointResolver _resolver;
    private readonly TimeProvider _timeProvider;
    private readonly RandomSource _random;
    private readonly LodestarMetrics _metrics;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ConcurrentDictionary<ServiceBalancer, Lazy<ServiceHealth>> _health = new(ReferenceEqualityComparer.Instance);
    private readonly ConcurrentDictionary<(ServiceBalancer Balancer, string Client), Lazy<ServiceResilience>> _clients = new();
    private volatile bool _disposed;

    public ResilienceRegistry(IEndpointResolver resolver, TimeProvider timeProvider, RandomSource random, LodestarMetrics metrics, ILoggerFactory loggerFactory)
    {
        _resolver = resolver;
        _timeProvider = timeProvider;
        _random = random;
        _metrics = metrics;
        _loggerFactory = loggerFactory;
    }

    /// <summary>Gets the client's resilience state for the balancer's service, creating it (and the service's health view) on first use.</summary>
    public ServiceResilience Get(ServiceBalancer balancer, string clientName, LodestarClientOptions options)
    {
        if (_clients.TryGetValue((balancer, clientName), out var existing))
        {
            return existing.Value;
        }

        ObjectDisposedException.ThrowIf(_disposed, this);
        var lazy = _clients.GetOrAdd((balancer, clientName), static (key, state) =>
        {
            var (self, options) = state;
            return new Lazy<ServiceResilience>(
                () => new ServiceResilience(self.GetHealth(key.Balancer, options), options, self._timeProvider),
                LazyThreadSafetyMode.ExecutionAndPublication);
        }, (this, options));
        return lazy.Value;
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var lazy in _clients.Values)
        {
            if (lazy.IsValueCreated)
            {
                lazy.Value.Dispose();
            }
        }

        foreach (var lazy in _health.Values)
        {
            if (lazy.IsValueCreated)
            {
                lazy.Value.Dispose();
            }
        }

        _clients.Clear();
        _health.Clear();
    }

    private ServiceHealth GetHealth(ServiceBalancer balancer, LodestarClientOptions options)
        => _health.GetOrAdd(balancer, static (b, state) =>
        {
            var (self, options) = state;
            return new Lazy<ServiceHealth>(
                () => new ServiceHealth(b, options.OutlierDetection, options.CircuitBreaker, options.HealthChecks, self._resolver, options.Source,
                    self._timeProvider, self._random, self._metrics, self._loggerFactory),
                LazyThreadSafetyMode.ExecutionAndPublication);
        }, (this, options)).Value;
}
