using Lodestar.Endpoints;
using Lodestar.LoadBalancing.Internal;

namespace Lodestar.LoadBalancing;

/// <summary>
/// Live, mutable statistics of one endpoint of one service: in-flight requests, totals, failures and health flags.
/// </summary>
/// <remarks>
/// One instance per endpoint identity survives every picker rebuild and endpoint-set change, so counters are never
/// reset or lost by a new snapshot. Every field is updated with <see cref="Interlocked"/> or volatile writes; readers
/// never lock.
/// </remarks>
public sealed class EndpointState
{
    private DiscoveredEndpoint _endpoint;
    private int _inFlight;
    private long _requests;
    private long _failures;
    private int _consecutiveFailures;
    private long _lastLatencyTicks;
    private readonly long _addedTimestamp;

    internal EndpointState(DiscoveredEndpoint endpoint, long addedTimestamp, EndpointTracking? tracking = null)
    {
        _endpoint = endpoint;
        _addedTimestamp = addedTimestamp;
        _tracking = tracking ?? EndpointTracking.Default;
    }

    /// <summary>Gets the endpoint as the source last described it (weight, zone and metadata may change over time).</summary>
    public DiscoveredEndpoint Endpoint => Volatile.Read(ref _endpoint);

    /// <summary>Gets the number of requests sent to the endpoint that have not completed.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Gets the number of requests sent to the endpoint.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Gets the number of requests that failed (transport error or 5xx).</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Gets the number of failures since the last success.</summary>
    public int ConsecutiveFailures => Volatile.Read(ref _consecutiveFailures);

    /// <summary>Gets the latency of the last completed request.</summary>
    public TimeSpan LastLatency => TimeSpan.FromTicks(Interlocked.Read(ref _lastLatencyTicks));

    /// <summary>Gets the <see cref="TimeProvider"/> timestamp at which the endpoint was first seen (for slow start).</summary>
    public long AddedTimestamp => _addedTimestamp;

    /// <summary>Gets whether passive outlier detection currently ejects the endpoint.</summary>
    public bool IsEjected => Volatile.Read(ref _ejected);

    /// <summary>Gets whether active health checks currently consider the endpoint healthy (true when checks are off).</summary>
    public bool IsActiveHealthy => Volatile.Read(ref _activeHealthy);

    /// <summary>Gets whether the endpoint's circuit breaker is open, which takes it out of picking like an ejection.</summary>
    public bool IsBreakerOpen => Volatile.Read(ref _breakerOpen);

    /// <summary>Gets whether the endpoint may take traffic: healthy by active checks, not ejected and its breaker not open.</summary>
    public bool IsHealthy => IsActiveHealthy && !IsEjected && !IsBreakerOpen;

    private bool _ejected;
    private bool _activeHealthy = true;
    private bool _breakerOpen;

    internal void SetEndpoint(DiscoveredEndpoint endpoint) => Volatile.Write(ref _endpoint, endpoint);

    internal void SetEjected(bool ejected) => Volatile.Write(ref _ejected, ejected);

    internal void SetActiveHealthy(bool healthy) => Volatile.Write(ref _activeHealthy, healthy);

    internal void SetBreakerOpen(bool open) => Volatile.Write(ref _breakerOpen, open);

    /// <summary>Records that a request was sent to the endpoint.</summary>
    internal void OnRequestStarted()
    {
        Interlocked.Increment(ref _inFlight);
        Interlocked.Increment(ref _requests);
        _tracking.OnRequestStarted();
    }

    /// <summary>Records the end of a request started with <see cref="OnRequestStarted"/>.</summary>
    internal void OnRequestCompleted(bool success, TimeSpan latency)
    {
        Interlocked.Decrement(ref _inFlight);
        _tracking.OnRequestCompleted();
        Interlocked.Exchange(ref _lastLatencyTicks, latency.Ticks);
        ObserveLatency(success, latency);
        if (success)
        {
            Volatile.Write(ref _consecutiveFailures, 0);
        }
        else
        {
            Interlocked.Increment(ref _failures);
            Interlocked.Increment(ref _consecutiveFailures);
        }
    }

    #region Load-balancing state (peak-EWMA latency, service-wide load)

    // Latency estimate in seconds as the bits of a double, so that it can be swapped with one compare-and-exchange.
    // A negative value means "no observation yet" (the policy then uses its default RTT).
    private long _ewmaBits = BitConverter.DoubleToInt64Bits(-1.0);
    private long _ewmaTimestamp;
    private readonly EndpointTracking _tracking;

    /// <summary>Gets the shared per-service tracking (service-wide in-flight count, clock, EWMA settings).</summary>
    internal EndpointTracking Tracking => _tracking;

    /// <summary>
    /// Gets the peak-EWMA latency estimate in seconds decayed to <paramref name="now"/>, or a negative value when the
    /// endpoint has no observation yet.
    /// </summary>
    /// <remarks>
    /// As in Linkerd's (tower's) <c>PeakEwma</c>, the estimate decays toward zero while no request completes, so an
    /// endpoint that was slow once is probed again after a while instead of being starved forever.
    /// </remarks>
    internal double GetLatencyEstimate(long now)
    {
        // The pick path reads with Volatile.Read: 64-bit volatile reads are atomic on every .NET platform, and
        // Interlocked.Read would cost a locked compare-exchange per candidate.
        var estimate = BitConverter.Int64BitsToDouble(Volatile.Read(ref _ewmaBits));
        if (estimate <= 0)
        {
            return estimate;
        }

        var elapsed = now - Volatile.Read(ref _ewmaTimestamp);
        return elapsed <= 0 ? estimate : estimate * Math.Exp(-elapsed * _tracking.InverseDecayTicks);
    }

    private void ObserveLatency(bool success, TimeSpan latency)
    {
        var tracking = _tracking;
        var rtt = latency.TotalSeconds;
        if (!success && rtt < tracking.FailurePenaltySeconds)
        {
            // A fast failure (connection refused, 503 from an overloaded instance) must not make the endpoint look
            // fast: Finagle records failures with a penalty latency.
            rtt = tracking.FailurePenaltySeconds;
        }

        if (rtt < 0)
        {
            rtt = 0;
        }

        var now = tracking.TimeProvider.GetTimestamp();
        while (true)
        {
            var bits = Interlocked.Read(ref _ewmaBits);
            var current = BitConverter.Int64BitsToDouble(bits);
            double next;
            if (current < 0 || rtt > current)
            {
                // Peak sensitivity: a slower observation replaces the estimate at once.
                next = rtt;
            }
            else
            {
                var elapsed = Math.Max(0, now - Interlocked.Read(ref _ewmaTimestamp));
                var weight = Math.Exp(-elapsed * tracking.InverseDecayTicks);
                next = (current * weight) + (rtt * (1 - weight));
            }

            if (Interlocked.CompareExchange(ref _ewmaBits, BitConverter.DoubleToInt64Bits(next), bits) == bits)
            {
                // The timestamp is written after the value; a reader that sees the new value with the old timestamp
                // decays it slightly more than it should, which is harmless for a load estimate.
                Interlocked.Exchange(ref _ewmaTimestamp, now);
                return;
            }
        }
    }

    #endregion
}
