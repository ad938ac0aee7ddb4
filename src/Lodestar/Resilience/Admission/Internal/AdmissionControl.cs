using System.Threading.RateLimiting;
using Lodestar.Diagnostics.Internal;
using Lodestar.Http;
using Lodestar.Resilience.Internal;

namespace Lodestar.Resilience.Admission.Internal;

/// <summary>
/// The first step of a request: the client-side rate limit, then a concurrency slot (backpressure). Both fail fast
/// with an exception that names the service; neither touches the network.
/// </summary>
internal static class AdmissionControl
{
    /// <summary>Admits a request, returning the concurrency slot to release when it ends (or <see langword="null"/> when there is no limit).</summary>
    /// <exception cref="RateLimitedException">The service's token bucket is empty.</exception>
    /// <exception cref="ServiceOverloadedException">Every slot is taken and the wait queue is full.</exception>
    public static ValueTask<RateLimitLease?> AdmitAsync(ServiceRoute route, LodestarClientOptions options, LodestarMetrics metrics, CancellationToken cancellationToken)
    {
        var resilience = route.Resilience;
        if (resilience.RateLimiter is { } rateLimiter && !rateLimiter.TryTake())
        {
            metrics.RecordRejected(route.ServiceName, "rate_limited");
            throw new RateLimitedException($"The client-side rate limit of service '{route.ServiceName}' rejected the request.") { ServiceName = route.ServiceName };
        }

        return resilience.Concurrency is { } concurrency
            ? AcquireSlotAsync(concurrency, route, options, metrics, cancellationToken)
            : ValueTask.FromResult<RateLimitLease?>(null);
    }

    private static async ValueTask<RateLimitLease?> AcquireSlotAsync(ConcurrencyLimiter concurrency, ServiceRoute route, LodestarClientOptions options, LodestarMetrics metrics,
        CancellationToken cancellationToken)
    {
        // Completes at once when a slot is free or the wait queue is full; waits (cancellably) only within MaxPendingRequests.
        var slot = await concurrency.AcquireAsync(1, cancellationToken).ConfigureAwait(false);
        if (slot.IsAcquired)
        {
            return slot;
        }

        slot.Dispose();
        metrics.RecordRejected(route.ServiceName, "overloaded");
        throw new ServiceOverloadedException(
            $"Service '{route.ServiceName}' already has {route.Resilience.MaxConcurrentRequests} requests in flight and {route.Resilience.MaxPendingRequests} waiting.")
        { ServiceName = route.ServiceName };
    }
}
