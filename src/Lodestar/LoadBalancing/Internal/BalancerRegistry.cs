using System.Collections.Concurrent;
using System.Collections.Frozen;
using Lodestar.Discovery;
using Lodestar.Discovery.Internal;
using Lodestar.Internal;
using Microsoft.Extensions.Options;

namespace Lodestar.LoadBalancing.Internal;

/// <summary>
/// Owns one <see cref="ServiceBalancer"/> per (source, service, policy), each fed by the endpoint cache.
/// </summary>
/// <remarks>
/// A watcher publishes a new set (to <see cref="IEndpointResolver.GetEndpointsAsync"/>) before it calls its
/// subscribers, and calls them in the order they subscribed; a balancer created on a service's first request usually
/// subscribes after the application's own observers. So an application can learn that an endpoint left the set while
/// this balancer's picker still holds it. <see cref="GetAsync"/> therefore compares the balancer's set version with
/// the watcher's current one and applies a newer set itself (<see cref="ServiceBalancer.Update"/> is idempotent by
/// version): a request that starts after a set became visible anywhere picks from that set or a newer one.
/// </remarks>
internal sealed class BalancerRegistry : IDisposable
{
    private readonly IEndpointResolver _resolver;
    private readonly FrozenDictionary<string, ILoadBalancingPolicy> _policies;
    private readonly IOptionsMonitor<LodestarOptions> _options;
    private readonly TimeProvider _timeProvider;
    private readonly RandomSource _random;
    private readonly IOptionsMonitor<LoadBalancingOptions>? _serviceOptions;
    private readonly ConcurrentDictionary<(string? Source, string Service, string Policy), Lazy<Entry>> _balancers = new();

    public BalancerRegistry(IEndpointResolver resolver, IEnumerable<ILoadBalancingPolicy> policies, IOptionsMonitor<LodestarOptions> options, TimeProvider timeProvider, RandomSource random)
        : this(resolver, policies, options, timeProvider, random, null)
    {
    }

    public BalancerRegistry(IEndpointResolver resolver, IEnumerable<ILoadBalancingPolicy> policies, IOptionsMonitor<LodestarOptions> options, TimeProvider timeProvider, RandomSource random,
        IOptionsMonitor<LoadBalancingOptions>? serviceOptions)
    {
        _serviceOptions = serviceOptions;
        _resolver = resolver;
        // Later registrations win, so users can replace a built-in policy by name.
        _policies = policies.GroupBy(p => p.Name, StringComparer.OrdinalIgnoreCase)
            .ToFrozenDictionary(g => g.Key, g => g.Last(), StringComparer.OrdinalIgnoreCase);
        _options = options;
        _timeProvider = timeProvider;
        _random = random;
    }

    public IReadOnlyCollection<string> PolicyNames => _policies.Keys;

    public bool HasPolicy(string name) => _policies.ContainsKey(name);

    /// <summary>Gets the balancer for a service, waiting for its first endpoint set when it is new.</summary>
    public ValueTask<ServiceBalancer> GetAsync(string serviceName, string? sourceName, string? policyName, CancellationToken cancellationToken)
    {
        policyName ??= _serviceOptions?.Get(serviceName).Policy ?? _options.CurrentValue.DefaultPolicy;
        var key = (sourceName, serviceName, policyName);
        if (_balancers.TryGetValue(key, out var entry) && entry.IsValueCreated && entry.Value.Balancer.SetVersion > 0)
        {
            var warm = entry.Value;
            if (warm.Watcher?.Current is { } current && current.Version > warm.Balancer.SetVersion)
            {
                // The watcher has published a set this balancer's subscription has not been told of yet.
                warm.Balancer.Update(current);
            }

            return new ValueTask<ServiceBalancer>(warm.Balancer);
        }

        return WarmAsync(key, cancellationToken);
    }

    public void Dispose()
    {
        foreach (var entry in _balancers.Values)
        {
            if (entry.IsValueCreated)
            {
                entry.Value.Subscription.Dispose();
            }
        }

        _balancers.Clear();
    }

    private async ValueTask<ServiceBalancer> WarmAsync((string? Source, string Service, string Policy) key, CancellationToken cancellationToken)
    {
        if (!_policies.TryGetValue(key.Policy, out var policy))
        {
            throw new InvalidOperationException($"Load-balancing policy '{key.Policy}' is not registered (registered: {string.Join(", ", _policies.Keys)}).");
        }

        // Lazy: concurrent first callers must not each subscribe (a losing subscription would leak).
        var lazy = _balancers.GetOrAdd(key, static (k, state) => new Lazy<Entry>(() =>
        {
            var (self, policy) = state;
            var balancer = new ServiceBalancer(k.Service, policy, self._timeProvider, self._options.CurrentValue.PanicThreshold, self._random,
                self._serviceOptions?.Get(k.Service));
            var subscription = self._resolver.Watch(k.Service, k.Source, balancer.Update);
            return new Entry(balancer, subscription, (self._resolver as EndpointCache)?.GetWatcher(k.Service, k.Source));
        }), (this, policy));
        Entry entry;
        try
        {
            entry = lazy.Value;
        }
        catch
        {
            // Do not cache a failure (for example an unknown service): the next request tries again.
            _balancers.TryRemove(new KeyValuePair<(string?, string, string), Lazy<Entry>>(key, lazy));
            throw;
        }

        if (entry.Balancer.SetVersion == 0)
        {
            // The subscription may be notified just after this wait completes; apply the set here too (idempotent by version).
            var set = await _resolver.GetEndpointsAsync(key.Service, key.Source, cancellationToken).ConfigureAwait(false);
            entry.Balancer.Update(set);
        }

        return entry.Balancer;
    }

    /// <param name="Balancer">The balancer.</param>
    /// <param name="Subscription">Feeds the balancer each new set.</param>
    /// <param name="Watcher">The watcher behind the subscription, read on every request; <see langword="null"/> when the resolver is not the endpoint cache.</param>
    private sealed record Entry(ServiceBalancer Balancer, IDisposable Subscription, EndpointWatcher? Watcher);
}
