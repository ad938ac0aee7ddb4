namespace Lodestar.Health.Internal;

/// <summary>
/// One endpoint's circuit breaker, with gobreaker's semantics: closed counts outcomes in a tumbling window and trips
/// on a failure ratio over a minimum volume; open rejects everything; half-open admits a limited number of probes and
/// closes when that many succeed in a row, re-opening on any failure. Results of requests admitted in an earlier
/// generation (before a state change) are ignored.
/// </summary>
/// <remarks>
/// The closed state admits without a lock (one volatile read); outcome counting in the closed state is
/// <see cref="Interlocked"/>; state changes and half-open bookkeeping take the breaker's own lock. The breaker does
/// not move from open to half-open by itself: its owner calls <see cref="TryHalfOpen"/> from a timer, so the endpoint
/// can return to picking at that moment. Transitions are returned to the caller, which reacts outside any lock.
/// </remarks>
internal sealed class CircuitBreaker
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _timeProvider;
    private readonly double _failureRatio;
    private readonly int _minimumThroughput;
    private readonly long _samplingTicks;
    private readonly int _maxProbes;
    private volatile int _state;
    private long _generation;
    private long _windowStart;
    private long _total;
    private long _failures;
    private int _probesInFlight;
    private int _probeSuccesses;

    public CircuitBreaker(TimeProvider timeProvider, double failureRatio, int minimumThroughput, TimeSpan samplingDuration, int maxProbes)
    {
        _timeProvider = timeProvider;
        _failureRatio = failureRatio;
        _minimumThroughput = minimumThroughput;
        _samplingTicks = (long)(samplingDuration.TotalSeconds * timeProvider.TimestampFrequency);
        _maxProbes = maxProbes;
        _windowStart = timeProvider.GetTimestamp();
    }

    public CircuitState State => (CircuitState)_state;

    /// <summary>Asks to send a request; returns the generation to report with, or -1 when the breaker rejects it.</summary>
    public long TryAcquire()
    {
        switch ((CircuitState)_state)
        {
            case CircuitState.Closed:
                // Volatile.Read: 64-bit volatile reads are atomic on every .NET platform, and Interlocked.Read would cost a
                // locked compare-exchange (an exclusive claim on the line other requests read) on every request.
                return Volatile.Read(ref _generation);
            case CircuitState.Open:
                return -1;
            default:
                lock (_gate)
                {
                    if ((CircuitState)_state == CircuitState.Closed)
                    {
                        return _generation;
                    }

                    if ((CircuitState)_state != CircuitState.HalfOpen || _probesInFlight + _probeSuccesses >= _maxProbes)
                    {
                        return -1;
                    }

                    _probesInFlight++;
                    return _generation;
                }
        }
    }

    /// <summary>Reports the outcome of a request admitted with <paramref name="generation"/>; returns the new state when it changed.</summary>
    public CircuitState? OnResult(long generation, bool success)
    {
        if ((CircuitState)_state == CircuitState.Closed && generation == Volatile.Read(ref _generation))
        {
            var now = _timeProvider.GetTimestamp();
            if (now - Volatile.Read(ref _windowStart) >= _samplingTicks)
            {
                lock (_gate)
                {
                    if (now - _windowStart >= _samplingTicks)
                    {
                        _windowStart = now;
                        Interlocked.Exchange(ref _total, 0);
                        Interlocked.Exchange(ref _failures, 0);
                    }
                }
            }

            var total = Interlocked.Increment(ref _total);
            if (success)
            {
                return null;
            }

            var failures = Interlocked.Increment(ref _failures);
            if (total < _minimumThroughput || failures < _failureRatio * total)
            {
                return null;
            }

            lock (_gate)
            {
                if ((CircuitState)_state != CircuitState.Closed || generation != _generation)
                {
                    return null;
                }

                Open_NeedsLock();
                return CircuitState.Open;
            }
        }

        if ((CircuitState)_state != CircuitState.HalfOpen)
        {
            return null;
        }

        lock (_gate)
        {
            if ((CircuitState)_state != CircuitState.HalfOpen || generation != _generation)
            {
                return null;
            }

            _probesInFlight--;
            if (!success)
            {
                Open_NeedsLock();
                return CircuitState.Open;
            }

            if (++_probeSuccesses >= _maxProbes)
            {
                _generation++;
                _windowStart = _timeProvider.GetTimestamp();
                Interlocked.Exchange(ref _total, 0);
                Interlocked.Exchange(ref _failures, 0);
                _state = (int)CircuitState.Closed;
                return CircuitState.Closed;
            }

            return null;
        }
    }

    /// <summary>Gives back a half-open probe slot of a request that ended without an outcome (cancelled by its caller).</summary>
    public void OnAbandoned(long generation)
    {
        if ((CircuitState)_state != CircuitState.HalfOpen)
        {
            return;
        }

        lock (_gate)
        {
            if ((CircuitState)_state == CircuitState.HalfOpen && generation == _generation && _probesInFlight > 0)
            {
                _probesInFlight--;
            }
        }
    }

    /// <summary>Moves an open breaker to half-open (its break duration has passed); returns whether it did.</summary>
    public bool TryHalfOpen()
    {
        lock (_gate)
        {
            if ((CircuitState)_state != CircuitState.Open)
            {
                return false;
            }

            _generation++;
            _probesInFlight = 0;
            _probeSuccesses = 0;
            _state = (int)CircuitState.HalfOpen;
            return true;
        }
    }

    private void Open_NeedsLock()
    {
        _generation++;
        _probesInFlight = 0;
        _probeSuccesses = 0;
        _state = (int)CircuitState.Open;
    }
}
