using System.Collections.Concurrent;
using System.Collections.Frozen;
using Lodestar.Discovery;
using Lodestar.Internal;
using Microsoft.Extensions.Options;

namespace Lodestar.LoadBalancing.Internal;

/// <summary>
/// Owns one <see cref="ServiceBalancer"/> per (source, service, policy), each fed by the endpoint cache.
/// </summary>
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
            return new ValueTask<ServiceBalancer>(entry.Value.Balancer);
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
            return new Entry(balancer, subscription);
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

    private sealed record Entry(ServiceBalancer Balancer, IDisposable Subscription);
}
