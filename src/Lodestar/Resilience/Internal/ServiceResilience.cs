using System.Threading.RateLimiting;
using Lodestar.Health.Internal;

namespace Lodestar.Resilience.Internal;

/// <summary>
/// What one client keeps per service: the retry budget, the backpressure and rate limiters, the retryable status
/// codes and the latency estimate for hedging, beside the service's shared <see cref="ServiceHealth"/>.
/// </summary>
internal sealed class ServiceResilience : IDisposable
{
    private static readonly int[] s_defaultRetryStatus = [502, 503, 504];

    private readonly bool[] _retryStatus = new bool[600];

    public ServiceResilience(ServiceHealth health, Http.LodestarClientOptions options, TimeProvider timeProvider)
    {
        Health = health;
        var retry = options.Retry;
        foreach (var code in retry.RetryOnStatusCodes ?? s_defaultRetryStatus)
        {
            if (code is >= 100 and < 600)
            {
                _retryStatus[code] = true;
            }
        }

        Budget = new RetryBudget(timeProvider, retry.BudgetWindow, retry.BudgetRatio, retry.BudgetMinRetriesPerSecond);
        if (options.ConcurrencyLimit.MaxConcurrentRequests is { } max)
        {
            Concurrency = new ConcurrencyLimiter(new ConcurrencyLimiterOptions
            {
                PermitLimit = max,
                QueueLimit = options.ConcurrencyLimit.MaxPendingRequests,
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

    public ServiceHealth Health { get; }

    public RetryBudget Budget { get; }

    public ConcurrencyLimiter? Concurrency { get; }

    public TokenBucket? RateLimiter { get; }

    public LatencyTracker? Latency { get; }

    public bool IsRetryableStatus(int statusCode) => (uint)statusCode < (uint)_retryStatus.Length && _retryStatus[statusCode];

    public void Dispose()
    {
        Concurrency?.Dispose();
    }
}
