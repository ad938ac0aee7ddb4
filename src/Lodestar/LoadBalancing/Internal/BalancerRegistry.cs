using System.Collections.Concurrent;
using System.Collections.Frozen;
using Lodestar.Health.Internal;
using Lodestar.Internal;
using Microsoft.Extensions.Options;

namespace Lodestar.LoadBalancing.Internal;

/// <summary>
/// Owns one <see cref="ServiceBalancer"/> per (health stage, policy); the stage is fed by the endpoint cache, the
/// balancer by the stage.
/// </summary>
internal sealed class BalancerRegistry : IDisposable
{
    private readonly HealthRegistry _health;
    private readonly FrozenDictionary<string, ILoadBalancingPolicy> _policies;
    private readonly IOptionsMonitor<LodestarOptions> _options;
    private readonly RandomSource _random;
    private readonly IOptionsMonitor<LoadBalancingOptions>? _serviceOptions;
    private readonly ConcurrentDictionary<(HealthStage Stage, string Policy), Lazy<ServiceBalancer>> _balancers = new();

    public BalancerRegistry(HealthRegistry health, IEnumerable<ILoadBalancingPolicy> policies, IOptionsMonitor<LodestarOptions> options, RandomSource random,
        IOptionsMonitor<LoadBalancingOptions>? serviceOptions = null)
    {
        _health = health;
        _serviceOptions = serviceOptions;
        // Later registrations win, so users can replace a built-in policy by name.
        _policies = policies.GroupBy(p => p.Name, StringComparer.OrdinalIgnoreCase)
            .ToFrozenDictionary(g => g.Key, g => g.Last(), StringComparer.OrdinalIgnoreCase);
        _options = options;
        _random = random;
    }

    public IReadOnlyCollection<string> PolicyNames => _policies.Keys;

    public bool HasPolicy(string name) => _policies.ContainsKey(name);

    /// <summary>Gets the balancer for a service with the service's own health settings (no client overrides).</summary>
    public ValueTask<ServiceBalancer> GetAsync(string serviceName, string? sourceName, string? policyName, CancellationToken cancellationToken)
        => GetAsync(serviceName, sourceName, policyName, _health.Resolve(serviceName, null), null, cancellationToken);

    /// <summary>Gets the balancer for a service and effective health settings, waiting for its first endpoint set when it is new.</summary>
    public async ValueTask<ServiceBalancer> GetAsync(string serviceName, string? sourceName, string? policyName, HealthSettings settings, string? requester,
        CancellationToken cancellationToken)
    {
        policyName ??= _serviceOptions?.Get(serviceName).Policy ?? _options.CurrentValue.DefaultPolicy;
        if (!_policies.TryGetValue(policyName, out var policy))
        {
            throw new InvalidOperationException($"Load-balancing policy '{policyName}' is not registered (registered: {string.Join(", ", _policies.Keys)}).");
        }

        var stage = await _health.GetAsync(serviceName, sourceName, settings, requester, cancellationToken).ConfigureAwait(false);

        // Lazy: concurrent first callers must not each subscribe (a losing subscription would leak).
        return _balancers.GetOrAdd((stage, policy.Name), static (k, state) => new Lazy<ServiceBalancer>(() =>
            new ServiceBalancer(k.Stage, state.Policy, state.Self._options.CurrentValue.PanicThreshold, state.Self._random,
                state.Self._serviceOptions?.Get(k.Stage.ServiceName))), (Self: this, Policy: policy)).Value;
    }

    /// <summary>Gets the balancers created so far, for diagnostics.</summary>
    internal IEnumerable<ServiceBalancer> Balancers
    {
        get
        {
            foreach (var entry in _balancers.Values)
            {
                if (entry.IsValueCreated)
                {
                    yield return entry.Value;
                }
            }
        }
    }

    /// <summary>
    /// Drops the balancers of a service (of every service when <paramref name="serviceName"/> is null or empty) after its
    /// options changed; the next request builds one from the current options. A request that holds a dropped balancer
    /// still picks from its last picker.
    /// </summary>
    public void Invalidate(string? serviceName)
    {
        foreach (var (key, entry) in _balancers)
        {
            if ((string.IsNullOrEmpty(serviceName) || string.Equals(key.Stage.ServiceName, serviceName, StringComparison.Ordinal))
                && _balancers.TryRemove(new KeyValuePair<(HealthStage, string), Lazy<ServiceBalancer>>(key, entry)) && entry.IsValueCreated)
            {
                entry.Value.Dispose();
            }
        }
    }

    /// <summary>Gets the load-balancing options a service's balancers were built with (slow start, zones), for diagnostics.</summary>
    internal LoadBalancingOptions GetOptions(string serviceName) => _serviceOptions?.Get(serviceName) ?? new LoadBalancingOptions();

    public void Dispose()
    {
        foreach (var entry in _balancers.Values)
        {
            if (entry.IsValueCreated)
            {
                entry.Value.Dispose();
            }
        }

        _balancers.Clear();
    }
}
