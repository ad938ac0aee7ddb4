using System.Threading.RateLimiting;
using Lodestar.Http;
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

    public ClientResilience(LodestarClientOptions options, TimeProvider timeProvider)
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

    public RetryBudget Budget { get; }

    public ConcurrencyLimiter? Concurrency { get; }

    public TokenBucket? RateLimiter { get; }

    public LatencyTracker? Latency { get; }

    public bool IsRetryableStatus(int statusCode) => (uint)statusCode < (uint)_retryStatus.Length && _retryStatus[statusCode];

    public void Dispose() => Concurrency?.Dispose();
}
