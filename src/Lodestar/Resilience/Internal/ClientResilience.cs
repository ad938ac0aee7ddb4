using System.Threading.RateLimiting;
using Lodestar.Http;
using Lodestar.Resilience.Admission;
using Lodestar.Resilience.Admission.Internal;
using Lodestar.Resilience.Hedging.Internal;
using Lodestar.Resilience.Retry.Internal;

namespace Lodestar.Resilience.Internal;

/// <summary>
/// What one client keeps per service: the retry budget, the backpressure and rate limiters, the retryable status
/// codes and the latency estimate for hedging. Health (ejections, breakers, checks) is the service's health stage's.
/// </summary>
internal sealed class ClientResilience : IDisposable
{
    private static readonly int[] s_defaultRetryStatus = [502, 503, 504];

    private readonly bool[] _retryStatus = new bool[600];

    /// <param name="options">The client's options.</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="serviceLimit">
    /// The service's own concurrency limit (its named <see cref="ConcurrencyLimitOptions"/>), used when the client sets
    /// no <see cref="ConcurrencyLimitOptions.MaxConcurrentRequests"/> of its own; <see langword="null"/> for none.
    /// </param>
    public ClientResilience(LodestarClientOptions options, TimeProvider timeProvider, ConcurrencyLimitOptions? serviceLimit = null)
    {
        var retry = options.Retry;
        foreach (var code in retry.RetryOnStatusCodes ?? s_defaultRetryStatus)
        {
            if (code is >= 100 and < 600)
            {
                _retryStatus[code] = true;
            }
        }

        Budget = new RetryBudget(timeProvider, retry.BudgetWindow, retry.BudgetRatio, retry.BudgetMinRetriesPerSecond);
        var limit = options.ConcurrencyLimit.MaxConcurrentRequests is not null ? options.ConcurrencyLimit : serviceLimit;
        if (limit?.MaxConcurrentRequests is { } max)
        {
            MaxConcurrentRequests = max;
            MaxPendingRequests = limit.MaxPendingRequests;
            Concurrency = new ConcurrencyLimiter(new ConcurrencyLimiterOptions
            {
                PermitLimit = max,
                QueueLimit = limit.MaxPendingRequests,
                QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
            });
        }

        var rate = options.RateLimit;
        if (rate.Enabled)
        {
            RateLimiter = new TokenBucket(timeProvider, rate.TokenLimit, rate.TokensPerPeriod, rate.ReplenishmentPeriod);
        }

        if (options.Hedging is { Enabled: true, DelayPercentile: { } percentile })
        {
            Latency = new LatencyTracker(percentile);
        }
    }

    public RetryBudget Budget { get; }

    public ConcurrencyLimiter? Concurrency { get; }

    /// <summary>Gets the most requests in flight that <see cref="Concurrency"/> allows, or <see langword="null"/> without a limit.</summary>
    public int? MaxConcurrentRequests { get; }

    /// <summary>Gets how many requests may wait for a slot of <see cref="Concurrency"/>.</summary>
    public int MaxPendingRequests { get; }

    public TokenBucket? RateLimiter { get; }

    public LatencyTracker? Latency { get; }

    /// <summary>Gets whether this state was built with the concurrency limit that these options and this service limit give.</summary>
    public bool HasLimitOf(LodestarClientOptions options, ConcurrencyLimitOptions? serviceLimit)
    {
        var limit = options.ConcurrencyLimit.MaxConcurrentRequests is not null ? options.ConcurrencyLimit : serviceLimit;
        return limit?.MaxConcurrentRequests == MaxConcurrentRequests && (MaxConcurrentRequests is null || limit!.MaxPendingRequests == MaxPendingRequests);
    }

    public bool IsRetryableStatus(int statusCode) => (uint)statusCode < (uint)_retryStatus.Length && _retryStatus[statusCode];

    public void Dispose() => Concurrency?.Dispose();
}
