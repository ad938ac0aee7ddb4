using Lodestar.Diagnostics.Internal;
using Lodestar.Health.Internal;
using Lodestar.LoadBalancing.Internal;

namespace Lodestar.LoadBalancing;

/// <summary>
/// One service's balancer as a caller outside the <see cref="HttpClient"/> handler sees it: pick an endpoint, start
/// the attempt, report how it ended. Obtained from <see cref="IServiceBalancing"/>.
/// </summary>
/// <remarks>
/// <see cref="TryPick"/> reads the current immutable picker without a lock and allocates nothing unless a circuit
/// breaker refuses the endpoint the policy chose. The health stage behind it is shared with every client of equal
/// settings, so what this caller reports ejects or restores endpoints for them too.
/// </remarks>
public sealed class BalancedService
{
    private readonly ServiceBalancer _balancer;
    private readonly LodestarMetrics _metrics;

    internal BalancedService(ServiceBalancer balancer, LodestarMetrics metrics)
    {
        _balancer = balancer;
        _metrics = metrics;
    }

    /// <summary>Gets the logical service name.</summary>
    public string ServiceName => _balancer.ServiceName;

    /// <summary>Gets the policy's name.</summary>
    public string PolicyName => _balancer.PolicyName;

    /// <summary>Gets the version of the endpoint set the current picker was built from; 0 before the first.</summary>
    public long SetVersion => _balancer.SetVersion;

    /// <summary>
    /// Registers a callback that runs each time the balancer starts picking from a newer endpoint set
    /// (<see cref="SetVersion"/> grew); health changes do not call it. A caller that holds back work until the balancer
    /// has applied a set it heard of elsewhere (a gRPC channel's resolver) resumes it here instead of polling.
    /// </summary>
    /// <param name="callback">Runs on the thread that applied the set, after the new picker is in force; keep it short and non-blocking.</param>
    /// <returns>The registration; dispose it to stop the calls.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="callback"/> is <see langword="null"/>.</exception>
    public IDisposable RegisterSetChanged(Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        return _balancer.RegisterSetChanged(callback);
    }

    /// <summary>Gets every endpoint that may take traffic (weight above 0), healthy or not.</summary>
    public IReadOnlyList<EndpointState> Endpoints => _balancer.Endpoints;

    /// <summary>Gets the endpoints the current picker balances over (the healthy ones, or all of them in panic).</summary>
    public IReadOnlyList<EndpointState> Routable => _balancer.Routable;

    /// <summary>
    /// Picks an endpoint for an attempt with the service's policy and admits it through the endpoint's circuit breaker.
    /// </summary>
    /// <param name="context">The request (for hash keys) and the endpoints already tried for it.</param>
    /// <param name="attempt">The admitted attempt, not started yet; call <see cref="EndpointAttempt.Start"/> when it is sent.</param>
    /// <returns><see langword="false"/> when no endpoint is left (none at all, all tried, or all refused by their breakers).</returns>
    public bool TryPick(in PickContext context, out EndpointAttempt attempt)
    {
        var state = _balancer.Pick(in context);
        _metrics.RecordPick(_balancer.ServiceName, _balancer.PolicyName);
        List<EndpointState>? refused = null;
        while (state is not null)
        {
            var ticket = HealthStage.TryAdmit(state);
            if (ticket >= 0)
            {
                attempt = new EndpointAttempt(state, _balancer.Stage, _metrics, ticket, 0, false);
                return true;
            }

            // Rare (an open or saturated half-open breaker): only this path allocates.
            refused ??= context.Attempted is { } tried ? [.. tried] : [];
            refused.Add(state);
            state = _balancer.Pick(context with { Attempted = refused });
        }

        attempt = default;
        return false;
    }
}
