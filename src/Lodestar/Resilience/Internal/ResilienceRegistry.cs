using System.Collections.Concurrent;
using Lodestar.Health.Internal;
using Lodestar.Http;
using Lodestar.LoadBalancing.Internal;

namespace Lodestar.Resilience.Internal;

/// <summary>
/// Resolves and keeps each client's route to each service: the balancer (over the health stage that the client's
/// effective health settings select) and the client's own <see cref="ClientResilience"/>. A route is made on first
/// use and lives until the container is disposed; the request path finds it with one dictionary lookup.
/// </summary>
internal sealed class ResilienceRegistry : IDisposable
{
    private readonly BalancerRegistry _balancers;
    private readonly HealthRegistry _health;
    private readonly TimeProvider _timeProvider;
    private readonly ConcurrentDictionary<(string Client, string Service), ServiceRoute> _routes = new();
    private readonly Lock _createGate = new();
    private volatile bool _disposed;

    public ResilienceRegistry(BalancerRegistry balancers, HealthRegistry health, TimeProvider timeProvider)
    {
        _balancers = balancers;
        _health = health;
        _timeProvider = timeProvider;
    }

    /// <summary>Gets the client's route to a service, creating it (and the stage and balancer behind it) on first use.</summary>
    public ValueTask<ServiceRoute> GetRouteAsync(string clientName, string serviceName, LodestarClientOptions options, CancellationToken cancellationToken)
    {
        if (_routes.TryGetValue((clientName, serviceName), out var route) && route.Balancer.SetVersion > 0)
        {
            route.Stage.CatchUp();
            return new ValueTask<ServiceRoute>(route);
        }

        return CreateRouteAsync(clientName, serviceName, options, cancellationToken);
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var route in _routes.Values)
        {
            route.Resilience.Dispose();
        }

        _routes.Clear();
    }

    private async ValueTask<ServiceRoute> CreateRouteAsync(string clientName, string serviceName, LodestarClientOptions options, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var settings = _health.Resolve(serviceName, options, clientName);
        var balancer = await _balancers.GetAsync(serviceName, options.Source, options.Policy, settings, clientName, cancellationToken).ConfigureAwait(false);
        lock (_createGate)
        {
            if (_routes.TryGetValue((clientName, serviceName), out var existing))
            {
                return existing;
            }

            var route = new ServiceRoute(balancer, new ClientResilience(options, _timeProvider));
            _routes[(clientName, serviceName)] = route;
            return route;
        }
    }
}

/// <summary>One client's way to one service: the balancer (and through it the health stage) and the client's resilience state.</summary>
internal sealed class ServiceRoute(ServiceBalancer balancer, ClientResilience resilience)
{
    public ServiceBalancer Balancer { get; } = balancer;

    public HealthStage Stage => Balancer.Stage;

    public ClientResilience Resilience { get; } = resilience;

    public string ServiceName => Balancer.ServiceName;
}
