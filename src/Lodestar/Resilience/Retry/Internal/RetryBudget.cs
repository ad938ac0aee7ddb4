using Lodestar.Internal;

namespace Lodestar.Resilience.Retry.Internal;

/// <summary>
/// A retry budget in Finagle's shape (<c>RetryBudget(ttl, minRetriesPerSec, percentCanRetry)</c>): over a sliding
/// window, retries may not exceed <c>ratio × requests + minPerSecond × window</c>. Envoy's budget has the same intent
/// (<c>budget_percent</c> 20 %, a small minimum), so an outage cannot multiply the load on a service.
/// </summary>
/// <remarks>
/// The window is ten buckets. Counting is lock-free (<see cref="Interlocked"/>); a bucket is reset under its own lock
/// once per bucket period when the clock moves into it. An increment racing with that reset can be lost, which only
/// makes the budget approximate by a request or two. Every request of the service adds to its bucket's request count,
/// and only a retry or hedge decision reads it, so that count is a <see cref="StripedCounter"/>: requests on different
/// processors do not contend for one cache line (Finagle's budget counts the same way).
/// </remarks>
internal sealed class RetryBudget
{
    private const int BucketCount = 10;

    private readonly TimeProvider _timeProvider;
    private readonly long _bucketTicks;
    private readonly double _ratio;
    private readonly double _reserve;
    private readonly Bucket[] _buckets;

    public RetryBudget(TimeProvider timeProvider, TimeSpan window, double ratio, int minRetriesPerSecond)
    {
        _timeProvider = timeProvider;
        _bucketTicks = Math.Max(1, (long)(window.TotalSeconds * timeProvider.TimestampFrequency / BucketCount));
        _ratio = ratio;
        _reserve = minRetriesPerSecond * window.TotalSeconds;
        _buckets = new Bucket[BucketCount];
        for (var i = 0; i < BucketCount; i++)
        {
            _buckets[i] = new Bucket { Epoch = -1 };
        }
    }

    /// <summary>Records a request (not a retry): each one earns <c>ratio</c> of a retry.</summary>
    public void OnRequest() => OnRequest(_timeProvider.GetTimestamp());

    /// <summary>
    /// Records a request (not a retry) that started at <paramref name="startedAt"/>, a timestamp of the budget's clock
    /// the caller already read (the request's start), so the request path reads it once.
    /// </summary>
    public void OnRequest(long startedAt) => BucketOf(startedAt / _bucketTicks).Requests.Increment();

    /// <summary>
    /// Takes one retry from the budget when it has one; for a hedge with <paramref name="hedgeRatio"/>, only while the
    /// window's hedges also stay within that share of its requests (no reserve: a strict share). The request count is
    /// the budget's own, so the limit adds nothing to a request that does not hedge.
    /// </summary>
    public bool TryWithdraw(double? hedgeRatio = null)
    {
        if (!Allows(hedgeRatio, out var current))
        {
            return false;
        }

        Interlocked.Increment(ref current.Retries);
        if (hedgeRatio is not null)
        {
            Interlocked.Increment(ref current.Hedges);
        }

        return true;
    }

    /// <summary>Whether <see cref="TryWithdraw"/> would give a retry (or a hedge within <paramref name="hedgeRatio"/>) now; takes nothing.</summary>
    public bool CanWithdraw(double? hedgeRatio = null) => Allows(hedgeRatio, out _);

    private bool Allows(double? hedgeRatio, out Bucket current)
    {
        current = Current(out var epoch);
        long requests = 0, retries = 0, hedges = 0;
        foreach (var bucket in _buckets)
        {
            if (epoch - Volatile.Read(ref bucket.Epoch) < BucketCount)
            {
                requests += bucket.Requests.Sum();
                retries += Interlocked.Read(ref bucket.Retries);
                hedges += Interlocked.Read(ref bucket.Hedges);
            }
        }

        return retries + 1 <= (_ratio * requests) + _reserve && (hedgeRatio is not { } share || hedges + 1 <= share * requests);
    }

    private Bucket Current(out long epoch)
    {
        epoch = _timeProvider.GetTimestamp() / _bucketTicks;
        return BucketOf(epoch);
    }

    private Bucket BucketOf(long epoch)
    {
        // Only forward: a request that read the clock just before another thread moved its bucket on counts in the
        // newer period rather than wiping it.
        var bucket = _buckets[(int)(epoch % BucketCount)];
        if (Volatile.Read(ref bucket.Epoch) < epoch)
        {
            lock (bucket)
            {
                if (bucket.Epoch < epoch)
                {
                    bucket.Requests.Reset();
                    Interlocked.Exchange(ref bucket.Retries, 0);
                    Interlocked.Exchange(ref bucket.Hedges, 0);
                    Volatile.Write(ref bucket.Epoch, epoch);
                }
            }
        }

        return bucket;
    }

    private sealed class Bucket
    {
        public readonly StripedCounter Requests = new();
        public long Epoch;
        public long Retries;
        public long Hedges;
    }
}
