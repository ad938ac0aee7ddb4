namespace Lodestar.Resilience.Admission.Internal;

/// <summary>
/// A token bucket with the semantics of System.Threading.RateLimiting's <c>TokenBucketRateLimiter</c> (a bucket of
/// <c>tokenLimit</c>, <c>tokensPerPeriod</c> added at the end of each whole period, no queue), computed lazily from
/// <see cref="TimeProvider"/> timestamps: no timer, and tests move time by hand.
/// </summary>
/// <remarks>
/// <c>TokenBucketRateLimiter</c> itself cannot be used: even with <c>AutoReplenishment</c> off, <c>TryReplenish</c>
/// adds tokens only when the <see cref="System.Diagnostics.Stopwatch"/> says a period has passed, so an injected clock
/// cannot drive it. The lock is held for a few arithmetic operations per request, as in that limiter.
/// </remarks>
internal sealed class TokenBucket
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _timeProvider;
    private readonly long _tokenLimit;
    private readonly long _tokensPerPeriod;
    private readonly long _periodTicks;
    private long _tokens;
    private long _periodStart;

    public TokenBucket(TimeProvider timeProvider, int tokenLimit, int tokensPerPeriod, TimeSpan period)
    {
        _timeProvider = timeProvider;
        _tokenLimit = tokenLimit;
        _tokensPerPeriod = tokensPerPeriod;
        _periodTicks = Math.Max(1, (long)(period.TotalSeconds * timeProvider.TimestampFrequency));
        _tokens = tokenLimit;
        _periodStart = timeProvider.GetTimestamp();
    }

    /// <summary>Takes a token when one is left.</summary>
    public bool TryTake()
    {
        var now = _timeProvider.GetTimestamp();
        lock (_gate)
        {
            var periods = (now - _periodStart) / _periodTicks;
            if (periods > 0)
            {
                _tokens = (long)Math.Min(_tokenLimit, _tokens + ((double)periods * _tokensPerPeriod));
                _periodStart += periods * _periodTicks;
            }

            if (_tokens == 0)
            {
                return false;
            }

            _tokens--;
            return true;
        }
    }
}
