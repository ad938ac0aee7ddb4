using System.Collections.Concurrent;
using Lodestar.Diagnostics.Internal;
using Lodestar.Health.Internal;
using Lodestar.Http;

namespace Lodestar.LoadBalancing.Internal;

/// <summary>
/// <see cref="IServiceBalancing"/> over the balancer and health registries the <see cref="HttpClient"/> handler uses,
/// so both paths share stages and balancers.
/// </summary>
internal sealed class ServiceBalancing(BalancerRegistry balancers, HealthRegistry health, LodestarMetrics metrics) : IServiceBalancing
{
    private readonly ConcurrentDictionary<ServiceBalancer, BalancedService> _views = new();

    public async ValueTask<BalancedService> GetServiceAsync(string serviceName, string? sourceName = null, string? policyName = null,
        LodestarClientOptions? clientOptions = null, string? clientName = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        var settings = health.Resolve(serviceName, clientOptions, clientName);
        var balancer = await balancers.GetAsync(serviceName, sourceName ?? clientOptions?.Source, policyName ?? clientOptions?.Policy, settings, clientName,
            cancellationToken).ConfigureAwait(false);
        return _views.GetOrAdd(balancer, static (b, m) => new BalancedService(b, m), metrics);
    }
}
