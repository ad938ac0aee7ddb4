namespace Lodestar.LoadBalancing.Internal;

/// <summary>
/// What the endpoint states of one health stage share: the clock, the peak-EWMA settings, which optional statistics
/// the stage's policies need, and the service-wide number of requests in flight (bounded-load consistent hashing
/// needs the total without summing every endpoint).
/// </summary>
internal sealed class EndpointTracking
{
    private int _inFlight;
    private int _statistics;

    public EndpointTracking(TimeProvider timeProvider, TimeSpan decay, TimeSpan failurePenalty, EndpointStatistics statistics = EndpointStatistics.None)
    {
        TimeProvider = timeProvider;
        // Decay is applied as exp(-elapsed / tau) with elapsed in timestamp units; keep 1/tau to multiply on the hot path.
        InverseDecayTicks = 1.0 / Math.Max(1.0, decay.TotalSeconds * timeProvider.TimestampFrequency);
        StaleAfterTicks = Math.Max(1L, (long)(Math.Min(decay.TotalSeconds / ProbeIntervalsPerDecay, MaxProbeIntervalSeconds) * timeProvider.TimestampFrequency));
        FailurePenaltySeconds = failurePenalty.TotalSeconds;
        _statistics = (int)statistics;
    }

    /// <summary>Creates tracking for endpoint states made outside a health stage (tests, tools): every statistic on.</summary>
    public static EndpointTracking CreateDefault(TimeProvider? timeProvider = null)
        => new(timeProvider ?? TimeProvider.System, LoadBalancingOptions.DefaultPeakEwmaDecay, LoadBalancingOptions.DefaultPeakEwmaFailurePenalty,
            EndpointStatistics.Latency | EndpointStatistics.ServiceLoad);

    public TimeProvider TimeProvider { get; }

    public double InverseDecayTicks { get; }

    public double FailurePenaltySeconds { get; }

    /// <summary>How many times per decay time constant, at least, an endpoint that gets no requests is tried again.</summary>
    internal const int ProbeIntervalsPerDecay = 10;

    /// <summary>The longest an endpoint that gets no requests waits to be tried again, whatever the decay (the default's 30 s included).</summary>
    internal const double MaxProbeIntervalSeconds = 1.0;

    /// <summary>
    /// Gets how long, in timestamp units, a latency estimate holds without a new answer: a tenth of the decay time
    /// constant, at most a second. Past it, an endpoint with nothing in flight competes as one never observed, and its
    /// next answer replaces the estimate when it is lower (see <see cref="EndpointState.GetPickEstimate"/>).
    /// <see cref="long.MaxValue"/> never probes, as in Linkerd.
    /// </summary>
    public long StaleAfterTicks { get; init; }

    /// <summary>
    /// Gets the least weight each latency observation gets in the estimate, however little time passed since the last:
    /// a stall's effect fades within about ten answers even at thousands of answers per second. Default 0.1; 0 is
    /// Linkerd's purely time-based average.
    /// </summary>
    public double SampleWeight { get; init; } = 0.1;

    /// <summary>
    /// Gets how far toward a slower observation the estimate moves at once. Default 0.25; 1 is Linkerd's and Finagle's
    /// peak sensitivity, where one stalled answer makes a fast endpoint look slow for a whole decay window.
    /// </summary>
    public double PeakWeight { get; init; } = 0.25;

    /// <summary>
    /// Gets the most one slower observation may multiply the estimate by. Default 1.25: a stall of a second on a 5 ms
    /// endpoint makes it look 6.25 ms slow, not 250 ms, which would starve it of the answers that correct the estimate.
    /// With sub-millisecond answers, where every stall of the client hits the cap, a cap of 2 let one backend fall
    /// behind the rest for seconds (equal backends' shares up to 1.8 apart in <c>PeakEwmaSimulationTests</c>); 1.25
    /// keeps them within 1.1 and a 5x or 10x slower backend's share unchanged. <see cref="double.PositiveInfinity"/> with
    /// a <see cref="PeakWeight"/> of 1 is Linkerd's rule.
    /// </summary>
    public double PeakGrowth { get; init; } = 1.25;

    /// <summary>Gets the statistics updated per request: the union of what the stage's policies asked for.</summary>
    public EndpointStatistics Statistics => (EndpointStatistics)Volatile.Read(ref _statistics);

    /// <summary>Gets the number of requests in flight to all endpoints, when <see cref="EndpointStatistics.ServiceLoad"/> is tracked.</summary>
    public int InFlight => Math.Max(0, Volatile.Read(ref _inFlight));

    /// <summary>Adds statistics to track from now on; they are never turned off again.</summary>
    public void Require(EndpointStatistics statistics)
    {
        int current;
        do
        {
            current = Volatile.Read(ref _statistics);
        }
        while ((current | (int)statistics) != current && Interlocked.CompareExchange(ref _statistics, current | (int)statistics, current) != current);
    }

    public void OnRequestStarted() => Interlocked.Increment(ref _inFlight);

    public void OnRequestCompleted() => Interlocked.Decrement(ref _inFlight);
}
