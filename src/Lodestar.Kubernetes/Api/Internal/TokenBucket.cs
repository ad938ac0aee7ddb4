namespace Lodestar.Kubernetes.Api.Internal;

/// <summary>
/// The client-side limiter for non-watch requests, like client-go's token bucket: <c>burst</c> requests at once,
/// then <c>qps</c> per second. A caller reserves a token and waits until it is due, so waiters keep their order.
/// </summary>
internal sealed class TokenBucket
{
    private readonly double _qps;
    private readonly int _burst;
    private readonly TimeProvider _timeProvider;
    private readonly Lock _gate = new();
    private double _tokens;
    private long _last;

    public TokenBucket(double qps, int burst, TimeProvider timeProvider)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(qps, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(burst, 1);
        _qps = qps;
        _burst = burst;
        _timeProvider = timeProvider;
        _tokens = burst;
        _last = timeProvider.GetTimestamp();
    }

    /// <summary>Waits until a request may go out.</summary>
    public async ValueTask AcquireAsync(CancellationToken cancellationToken)
    {
        TimeSpan wait;
        lock (_gate)
        {
            var now = _timeProvider.GetTimestamp();
            _tokens = Math.Min(_burst, _tokens + (_timeProvider.GetElapsedTime(_last, now).TotalSeconds * _qps));
            _last = now;
            _tokens -= 1;
            if (_tokens >= 0)
            {
                return;
            }

            wait = TimeSpan.FromSeconds(-_tokens / _qps);
        }

        try
        {
            await Task.Delay(wait, _timeProvider, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            lock (_gate)
            {
                // The reservation was not used: give it back.
                _tokens += 1;
            }

            throw;
        }
    }
}
