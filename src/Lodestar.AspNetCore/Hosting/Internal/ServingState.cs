namespace Lodestar.AspNetCore.Hosting.Internal;

/// <summary>The instance's serving state: whether it drains, and since when. Shared by readiness and the drain.</summary>
/// <remarks>Draining only ever goes from false to true, once; readers never lock.</remarks>
internal sealed class ServingState
{
    private readonly TimeProvider _timeProvider;
    private readonly Lock _gate = new();
    private volatile bool _draining;
    private long _drainStarted;

    public ServingState(TimeProvider timeProvider)
    {
        _timeProvider = timeProvider;
    }

    /// <summary>Gets whether the instance drains: readiness answers 503 from then on.</summary>
    public bool IsDraining => _draining;

    /// <summary>Gets the time since the drain began, or <see cref="TimeSpan.Zero"/> when it has not.</summary>
    public TimeSpan DrainElapsed => _draining ? _timeProvider.GetElapsedTime(Interlocked.Read(ref _drainStarted)) : TimeSpan.Zero;

    /// <summary>Starts the drain; returns <see langword="true"/> only for the call that started it.</summary>
    public bool BeginDrain()
    {
        lock (_gate)
        {
            if (_draining)
            {
                return false;
            }

            // The timestamp is written before the flag is published, so whoever sees the flag sees the timestamp.
            Interlocked.Exchange(ref _drainStarted, _timeProvider.GetTimestamp());
            _draining = true;
            return true;
        }
    }
}
