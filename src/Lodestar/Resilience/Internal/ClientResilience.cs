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
    private int _retriesInFlight;

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

        MaxConcurrentRetries = options.ConcurrencyLimit.MaxConcurrentRetries ?? serviceLimit?.MaxConcurrentRetries;

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

    /// <summary>Gets the most retries in flight, or <see langword="null"/> for no cap.</summary>
    public int? MaxConcurrentRetries { get; }

    public TokenBucket? RateLimiter { get; }

    public LatencyTracker? Latency { get; }

    /// <summary>Gets whether this state was built with the concurrency limit that these options and this service limit give.</summary>
    public bool HasLimitOf(LodestarClientOptions options, ConcurrencyLimitOptions? serviceLimit)
    {
        var limit = options.ConcurrencyLimit.MaxConcurrentRequests is not null ? options.ConcurrencyLimit : serviceLimit;
        return limit?.MaxConcurrentRequests == MaxConcurrentRequests && (MaxConcurrentRequests is null || limit!.MaxPendingRequests == MaxPendingRequests)
            && (options.ConcurrencyLimit.MaxConcurrentRetries ?? serviceLimit?.MaxConcurrentRetries) == MaxConcurrentRetries;
    }

    /// <summary>Counts one more retry in flight unless <see cref="MaxConcurrentRetries"/> are already; always succeeds without a cap.</summary>
    /// <returns><see langword="false"/> when the retry may not be made; otherwise the caller calls <see cref="ExitRetry"/> once it ends.</returns>
    public bool TryEnterRetry()
    {
        if (MaxConcurrentRetries is not { } max)
        {
            return true;
        }

        var current = Volatile.Read(ref _retriesInFlight);
        while (current < max)
        {
            var seen = Interlocked.CompareExchange(ref _retriesInFlight, current + 1, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }

        return false;
    }

    /// <summary>Ends a retry counted by <see cref="TryEnterRetry"/>.</summary>
    public void ExitRetry()
    {
        if (MaxConcurrentRetries is not null)
        {
            Interlocked.Decrement(ref _retriesInFlight);
        }
    }

    public bool IsRetryableStatus(int statusCode) => (uint)statusCode < (uint)_retryStatus.Length && _retryStatus[statusCode];

    public void Dispose() => Concurrency?.Dispose();
}
