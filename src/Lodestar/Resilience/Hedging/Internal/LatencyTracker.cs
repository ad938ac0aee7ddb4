namespace Lodestar.Resilience.Hedging.Internal;

/// <summary>
/// Keeps the latencies of a service's recent first attempts in a ring and estimates a percentile from them, for the
/// hedging delay. Recording is lock-free; the estimate is recomputed at most every <see cref="RecomputeEvery"/>
/// samples by one thread at a time, into a buffer of its own (no allocation), others reuse the cached value.
/// </summary>
/// <remarks>
/// A first attempt cancelled because a hedge won is recorded with the time it had run (a lower bound of its latency,
/// and at least the delay): samples at or above the estimate keep their rank, so the estimate stays honest instead of
/// falling every time a hedge wins, which would hedge ever more requests.
/// </remarks>
internal sealed class LatencyTracker
{
    private const int Capacity = 512;
    private const int RecomputeEvery = 64;
    private const int MinimumSamples = 100;

    private readonly long[] _ticks = new long[Capacity];
    private readonly long[] _sorted = new long[Capacity];
    private readonly Lock _computeGate = new();
    private readonly double _percentile;
    private long _count;
    private long _computedAt = -RecomputeEvery;
    private long _cachedTicks = -1;

    public LatencyTracker(double percentile)
    {
        _percentile = percentile;
    }

    public void Record(TimeSpan latency)
    {
        var index = Interlocked.Increment(ref _count) - 1;
        Volatile.Write(ref _ticks[index % Capacity], latency.Ticks);
    }

    /// <summary>Returns the percentile of recent latencies, or <paramref name="fallback"/> until enough were recorded.</summary>
    public TimeSpan GetPercentile(TimeSpan fallback)
    {
        var count = Interlocked.Read(ref _count);
        if (count < MinimumSamples)
        {
            return fallback;
        }

        if (count - Interlocked.Read(ref _computedAt) >= RecomputeEvery && _computeGate.TryEnter())
        {
            try
            {
                var n = (int)Math.Min(count, Capacity);
                var copy = _sorted.AsSpan(0, n);
                for (var i = 0; i < n; i++)
                {
                    copy[i] = Volatile.Read(ref _ticks[i]);
                }

                copy.Sort();
                var rank = Math.Clamp((int)Math.Ceiling(_percentile * n) - 1, 0, n - 1);
                Interlocked.Exchange(ref _cachedTicks, copy[rank]);
                Interlocked.Exchange(ref _computedAt, count);
            }
            finally
            {
                _computeGate.Exit();
            }
        }

        var cached = Interlocked.Read(ref _cachedTicks);
        return cached < 0 ? fallback : TimeSpan.FromTicks(cached);
    }
}
