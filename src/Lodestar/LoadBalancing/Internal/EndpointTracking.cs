namespace Lodestar.LoadBalancing.Internal;

/// <summary>
/// What the endpoints of one balancer share: the clock and latency settings for peak-EWMA, and the service-wide
/// number of requests in flight (bounded-load consistent hashing needs the total without summing every endpoint).
/// </summary>
internal sealed class EndpointTracking
{
    /// <summary>Tracking for endpoint states created outside a balancer (tests, tools): system clock, default settings.</summary>
    public static readonly EndpointTracking Default = new(TimeProvider.System, LoadBalancingOptions.DefaultPeakEwmaDecay, LoadBalancingOptions.DefaultPeakEwmaFailurePenalty);

    private int _inFlight;

    public EndpointTracking(TimeProvider timeProvider, TimeSpan decay, TimeSpan failurePenalty)
    {
        TimeProvider = timeProvider;
        // Decay is applied as exp(-elapsed / tau) with elapsed in timestamp units; keep 1/tau to multiply on the hot path.
        InverseDecayTicks = 1.0 / Math.Max(1.0, decay.TotalSeconds * timeProvider.TimestampFrequency);
        FailurePenaltySeconds = failurePenalty.TotalSeconds;
    }

    public TimeProvider TimeProvider { get; }

    public double InverseDecayTicks { get; }

    public double FailurePenaltySeconds { get; }

    /// <summary>Gets the number of requests in flight to all endpoints of the balancer.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    public void OnRequestStarted() => Interlocked.Increment(ref _inFlight);

    public void OnRequestCompleted() => Interlocked.Decrement(ref _inFlight);
}
