using System.Collections.Concurrent;
using Lodestar.Health;
using Lodestar.Health.Internal;
using Lodestar.Http;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Lodestar.Resilience.Admission;
using Microsoft.Extensions.Options;

namespace Lodestar.Resilience.Internal;

/// <summary>
/// Resolves and keeps each client's route to each service: the balancer (over the health stage that the client's
/// effective health settings select) and the client's own <see cref="ClientResilience"/>. A route is made on first
/// use and lives until the container is disposed; the request path finds it with one dictionary lookup.
/// </summary>
/// <remarks>
/// When a service's named <see cref="LoadBalancingOptions"/>, <see cref="OutlierDetectionOptions"/>,
/// <see cref="HealthCheckOptions"/> or <see cref="CircuitBreakerOptions"/> change (a configuration reload, or an
/// <see cref="IOptionsChangeTokenSource{TOptions}"/> such as a control plane's), the service's routes are marked stale
/// and its balancers dropped: the next request resolves the settings again and gets a balancer (and, when the health
/// settings changed, a health stage) built from them. The client's resilience state (budget, limiters) carries over.
/// </remarks>
internal sealed class ResilienceRegistry : IDisposable
{
    private readonly BalancerRegistry _balancers;
    private readonly HealthRegistry _health;
    private readonly TimeProvider _timeProvider;
    private readonly IOptionsMonitor<ConcurrencyLimitOptions>? _concurrencyLimits;
    private readonly ConcurrentDictionary<(string Client, string Service), ServiceRoute> _routes = new();
    private readonly Lock _createGate = new();
    private readonly List<IDisposable> _changeSubscriptions = [];
    private long _generation;
    private volatile bool _disposed;

    public ResilienceRegistry(BalancerRegistry balancers, HealthRegistry health, TimeProvider timeProvider,
        IOptionsMonitor<LoadBalancingOptions>? loadBalancing = null, IOptionsMonitor<OutlierDetectionOptions>? outlier = null,
        IOptionsMonitor<HealthCheckOptions>? checks = null, IOptionsMonitor<CircuitBreakerOptions>? breakers = null,
        IOptionsMonitor<ConcurrencyLimitOptions>? concurrencyLimits = null)
    {
        _balancers = balancers;
        _health = health;
        _timeProvider = timeProvider;
        _concurrencyLimits = concurrencyLimits;
        Subscribe(loadBalancing);
        Subscribe(outlier);
        Subscribe(checks);
        Subscribe(breakers);
        Subscribe(concurrencyLimits);
    }

    /// <summary>Gets the client's route to a service, creating it (and the stage and balancer behind it) on first use.</summary>
    public ValueTask<ServiceRoute> GetRouteAsync(string clientName, string serviceName, LodestarClientOptions options, CancellationToken cancellationToken)
    {
        if (_routes.TryGetValue((clientName, serviceName), out var route) && IsCurrent(route))
        {
            return new ValueTask<ServiceRoute>(route);
        }

        return CreateRouteAsync(clientName, serviceName, options, cancellationToken);
    }

    /// <summary>
    /// Whether a route can serve a request now, kept by the registry or by a caller from an earlier request: its first
    /// endpoint set has arrived and its service's options have not changed since it was built. Catches its balancer up
    /// with the latest set when it can.
    /// </summary>
    public static bool IsCurrent(ServiceRoute route)
    {
        if (route.Balancer.SetVersion > 0 && !route.IsStale)
        {
            route.Balancer.CatchUp();
            return true;
        }

        return false;
    }

    /// <summary>
    /// Marks the routes to a service (every service when <paramref name="serviceName"/> is null or empty) stale and
    /// drops its balancers, so that the next request builds them from the service's current options.
    /// </summary>
    public void Invalidate(string? serviceName)
    {
        var all = string.IsNullOrEmpty(serviceName);
        Interlocked.Increment(ref _generation);
        _balancers.Invalidate(serviceName);
        foreach (var (key, route) in _routes)
        {
            if (all || string.Equals(key.Service, serviceName, StringComparison.Ordinal))
            {
                route.IsStale = true;
            }
        }
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var subscription in _changeSubscriptions)
        {
            subscription.Dispose();
        }

        foreach (var route in _routes.Values)
        {
            route.Resilience.Dispose();
        }

        _routes.Clear();
    }

    private async ValueTask<ServiceRoute> CreateRouteAsync(string clientName, string serviceName, LodestarClientOptions options, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var generation = Interlocked.Read(ref _generation);
        var settings = _health.Resolve(serviceName, options, clientName);
        var balancer = await _balancers.GetAsync(serviceName, options.Source, options.Policy, settings, clientName, cancellationToken).ConfigureAwait(false);
        if (Interlocked.Read(ref _generation) != generation)
        {
            // The options changed while the first endpoint set was awaited: a source that also supplies the service's
            // settings (a control plane's cluster) sends them just before its endpoints. Build once more from them, so
            // that the first request already uses them; the set is cached now, so this does not wait again.
            generation = Interlocked.Read(ref _generation);
            settings = _health.Resolve(serviceName, options, clientName);
            balancer = await _balancers.GetAsync(serviceName, options.Source, options.Policy, settings, clientName, cancellationToken).ConfigureAwait(false);
        }
        lock (_createGate)
        {
            if (_routes.TryGetValue((clientName, serviceName), out var existing) && !existing.IsStale)
            {
                return existing;
            }

            // The resilience state (budget, limiters with their waiting requests) outlives a change of settings, unless
            // the service's own concurrency limit changed: then the new limit starts with a new state (the old limiter
            // still releases the slots of the requests it admitted).
            var serviceLimit = _concurrencyLimits?.Get(serviceName);
            var resilience = existing?.Resilience is { } kept && kept.HasLimitOf(options, serviceLimit) ? kept : new ClientResilience(options, _timeProvider, serviceLimit);
            var route = new ServiceRoute(balancer, resilience);

            // Options that changed while this route was being built may not be in it: the next request builds again.
            route.IsStale = Interlocked.Read(ref _generation) != generation;
            _routes[(clientName, serviceName)] = route;
            return route;
        }
    }

    private void Subscribe<TOptions>(IOptionsMonitor<TOptions>? monitor)
    {
        if (monitor?.OnChange((_, name) => Invalidate(name)) is { } subscription)
        {
            _changeSubscriptions.Add(subscription);
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

    /// <summary>Gets or sets whether the service's options changed since the route was built.</summary>
    public bool IsStale
    {
        get => Volatile.Read(ref field);
        set => Volatile.Write(ref field, value);
    }
}
