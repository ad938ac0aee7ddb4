using Lodestar.Endpoints;
using Lodestar.Health;
using Lodestar.Health.Internal;
using Lodestar.LoadBalancing.Internal;

namespace Lodestar.LoadBalancing;

/// <summary>
/// The one record of an endpoint of a service: live load and latency, totals, and health (outlier ejection, active
/// checks, circuit breaker). Pickers, the request pipeline, the health stage and connection retirement all read the
/// same object.
/// </summary>
/// <remarks>
/// <para>
/// One instance per endpoint identity lives in the service's health stage and survives every picker rebuild and
/// endpoint-set change, so counters are never reset or lost by a new snapshot.
/// </para>
/// <para>
/// Concurrency rule: every field is written with <see cref="Interlocked"/> or <see cref="Volatile"/>; readers never
/// lock. Reading a member costs at most a volatile read, so diagnostics (an admin page, <c>lodestar top</c>) may read
/// any of them at any time without slowing the pick path.
/// </para>
/// </remarks>
public sealed class EndpointState
{
    private readonly long _addedTimestamp;
    private readonly EndpointTracking _tracking;
    private DiscoveredEndpoint _endpoint;
    private int _inFlight;
    private long _requests;
    private long _failures;
    private int _consecutiveFailures;
    private long _lastLatencyTicks;

    // Latency estimate in seconds as the bits of a double, so that it can be swapped with one compare-and-exchange.
    // A negative value means "no observation yet" (the policy then uses its default RTT).
    private long _ewmaBits = BitConverter.DoubleToInt64Bits(-1.0);
    private long _ewmaTimestamp;

    private EndpointEjection? _ejection;
    private bool _activeHealthy = true;

    internal EndpointState(DiscoveredEndpoint endpoint, long addedTimestamp, EndpointTracking? tracking = null, CircuitBreaker? breaker = null)
    {
        _endpoint = endpoint;
        _addedTimestamp = addedTimestamp;
        _tracking = tracking ?? EndpointTracking.CreateDefault();
        Breaker = breaker;
    }

    /// <summary>Gets the endpoint as the source last described it (weight, zone and metadata may change over time).</summary>
    public DiscoveredEndpoint Endpoint => Volatile.Read(ref _endpoint);

    /// <summary>Gets the number of attempts sent to the endpoint that have no response headers (or failure) yet.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Gets the number of attempts sent to the endpoint.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Gets the number of attempts that failed (transport error or 5xx).</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Gets the number of failures since the last success.</summary>
    public int ConsecutiveFailures => Volatile.Read(ref _consecutiveFailures);

    /// <summary>Gets the latency of the last completed attempt.</summary>
    public TimeSpan LastLatency => TimeSpan.FromTicks(Volatile.Read(ref _lastLatencyTicks));

    /// <summary>Gets the <see cref="TimeProvider"/> timestamp at which the endpoint was first seen (for slow start).</summary>
    public long AddedTimestamp => _addedTimestamp;

    /// <summary>
    /// Gets the peak-EWMA latency estimate decayed to now, or <see langword="null"/> when no attempt has completed
    /// yet or no policy of the service uses latency (<see cref="EndpointStatistics.Latency"/>), so it is not measured.
    /// </summary>
    public TimeSpan? LatencyEstimate
    {
        get
        {
            var seconds = GetLatencyEstimate(_tracking.TimeProvider.GetTimestamp());
            return seconds < 0 ? null : TimeSpan.FromSeconds(seconds);
        }
    }

    /// <summary>Gets whether passive outlier detection currently ejects the endpoint.</summary>
    public bool IsEjected => Volatile.Read(ref _ejection) is not null;

    /// <summary>Gets the current ejection (reason, since, until), or <see langword="null"/> when the endpoint is not ejected.</summary>
    public EndpointEjection? Ejection => Volatile.Read(ref _ejection);

    /// <summary>Gets whether active health checks currently consider the endpoint healthy (true when checks are off).</summary>
    public bool IsActiveHealthy => Volatile.Read(ref _activeHealthy);

    /// <summary>Gets the state of the endpoint's circuit breaker; <see cref="CircuitState.Closed"/> when breakers are off.</summary>
    public CircuitState CircuitState => Breaker?.State ?? CircuitState.Closed;

    /// <summary>Gets whether the endpoint's circuit breaker is open, which takes it out of picking like an ejection.</summary>
    public bool IsBreakerOpen => Breaker?.State == CircuitState.Open;

    /// <summary>Gets whether the endpoint may take traffic: healthy by active checks, not ejected and its breaker not open.</summary>
    public bool IsHealthy => IsActiveHealthy && !IsEjected && !IsBreakerOpen;

    /// <summary>Gets the shared per-stage tracking (service-wide in-flight count, clock, EWMA settings).</summary>
    internal EndpointTracking Tracking => _tracking;

    #region Health bookkeeping (owned by the health stage)

    /// <summary>Gets the endpoint's circuit breaker, or <see langword="null"/> when breakers are off.</summary>
    internal CircuitBreaker? Breaker { get; }

    // Outlier detection, updated with Interlocked on the request path.
    internal int ConsecutiveServerErrors;
    internal int ConsecutiveGatewayFailures;
    internal int ConsecutiveConnectFailures;
    internal long IntervalRequests;
    internal long IntervalFailures;

    // Guarded by the health stage's outlier gate.
    internal int EjectionMultiplier;
    internal bool EjectedThisInterval;

    // Touched only by the active checker, one check per endpoint at a time.
    internal int CheckSuccesses;
    internal int CheckFailures;
    internal bool Checked;

    // The timer that moves an open breaker to half-open.
    internal ITimer? BreakerTimer;

    /// <summary>Gets or sets whether the endpoint left its stage's set; connection retirement forgets it once idle.</summary>
    internal bool Departed
    {
        get => Volatile.Read(ref _departed);
        set => Volatile.Write(ref _departed, value);
    }

    private bool _departed;

    internal void SetEjection(EndpointEjection? ejection) => Volatile.Write(ref _ejection, ejection);

    internal void SetActiveHealthy(bool healthy) => Volatile.Write(ref _activeHealthy, healthy);

    #endregion

    internal void SetEndpoint(DiscoveredEndpoint endpoint) => Volatile.Write(ref _endpoint, endpoint);

    /// <summary>Gets or sets the physical URI of the last attempt sent to the endpoint, which the next one reuses when it matches.</summary>
    internal Http.Internal.RewrittenUri? LastRewrite
    {
        get => Volatile.Read(ref _lastRewrite);
        set => Volatile.Write(ref _lastRewrite, value);
    }

    private Http.Internal.RewrittenUri? _lastRewrite;

    /// <summary>Records that an attempt was sent to the endpoint.</summary>
    /// <returns>Whether the service-wide load counted it; pass it back to <see cref="OnRequestCompleted"/>.</returns>
    internal bool OnRequestStarted()
    {
        Interlocked.Increment(ref _inFlight);
        Interlocked.Increment(ref _requests);
        if ((_tracking.Statistics & EndpointStatistics.ServiceLoad) == 0)
        {
            return false;
        }

        _tracking.OnRequestStarted();
        return true;
    }

    /// <summary>Records the end of an attempt started with <see cref="OnRequestStarted"/>.</summary>
    /// <param name="success">Whether the attempt got a response below 500.</param>
    /// <param name="latency">The time to response headers or failure.</param>
    /// <param name="countedLoad">What <see cref="OnRequestStarted"/> returned; <see langword="null"/> for what the tracking does now.</param>
    internal void OnRequestCompleted(bool success, TimeSpan latency, bool? countedLoad = null)
    {
        Interlocked.Decrement(ref _inFlight);
        var statistics = _tracking.Statistics;
        if (countedLoad ?? (statistics & EndpointStatistics.ServiceLoad) != 0)
        {
            _tracking.OnRequestCompleted();
        }

        // A plain (atomic) store: only the inspector reads it, and a full fence per attempt would buy nothing.
        Volatile.Write(ref _lastLatencyTicks, latency.Ticks);
        if ((statistics & EndpointStatistics.Latency) != 0)
        {
            ObserveLatency(success, latency);
        }

        if (success)
        {
            if (Volatile.Read(ref _consecutiveFailures) != 0)
            {
                Volatile.Write(ref _consecutiveFailures, 0);
            }
        }
        else
        {
            Interlocked.Increment(ref _failures);
            Interlocked.Increment(ref _consecutiveFailures);
        }
    }

    /// <summary>
    /// Records the end of an attempt started with <see cref="OnRequestStarted"/> that was cancelled before an outcome (a
    /// hedge won, the caller gave up): no failure is counted, and the time it ran counts as a latency only when it is
    /// above the estimate the last answer left (it is a lower bound), so losing hedges neither punish nor flatter the
    /// endpoint. A quicker one says nothing new, and the estimate stands as that answer left it: the time since then
    /// does not count toward the decay, nor toward going stale, since the endpoint was tried and gave no answer that
    /// could lower it. Otherwise an endpoint tried again after going stale, whose attempts a hedge keeps beating,
    /// would stay stale and be picked over and over, one attempt at a time, for as long as its estimate takes to
    /// decay below the hedging delay.
    /// </summary>
    /// <param name="elapsed">The time the attempt ran.</param>
    /// <param name="countedLoad">What <see cref="OnRequestStarted"/> returned.</param>
    internal void OnRequestAbandoned(TimeSpan elapsed, bool countedLoad)
    {
        Interlocked.Decrement(ref _inFlight);
        if (countedLoad)
        {
            _tracking.OnRequestCompleted();
        }

        if ((_tracking.Statistics & EndpointStatistics.Latency) == 0)
        {
            return;
        }

        if (elapsed.TotalSeconds > BitConverter.Int64BitsToDouble(Interlocked.Read(ref _ewmaBits)))
        {
            ObserveLatency(true, elapsed);
        }
        else
        {
            // Racing an answer's update, this can only stamp that update's value a moment later than it did.
            Interlocked.Exchange(ref _ewmaTimestamp, _tracking.TimeProvider.GetTimestamp());
        }
    }

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

        return Decayed(estimate, now - Volatile.Read(ref _ewmaTimestamp));
    }

    /// <summary>
    /// Gets the estimate a pick weighs: <see cref="GetLatencyEstimate"/>, or a negative value (unobserved, so it competes
    /// at the best estimate among the candidates) when the estimate is older than <see cref="EndpointTracking.StaleAfterTicks"/>
    /// with nothing in flight. Such an endpoint got no request for that long, so its estimate describes a past the balancer
    /// has stopped checking: one held up by one slow answer (a first request that paid for connecting and a cold server, a
    /// stall) would otherwise keep a fast endpoint out for as long as the decay takes to bring it below the others', about
    /// <c>decay × ln(its estimate / theirs)</c>: tens of seconds with sub-millisecond backends. One read of each field.
    /// </summary>
    internal double GetPickEstimate(long now)
    {
        var estimate = BitConverter.Int64BitsToDouble(Volatile.Read(ref _ewmaBits));
        if (estimate < 0)
        {
            return estimate;
        }

        var elapsed = now - Volatile.Read(ref _ewmaTimestamp);
        if (IsStale(elapsed) && Volatile.Read(ref _inFlight) == 0)
        {
            return -1;
        }

        return Decayed(estimate, elapsed);
    }

    private bool IsStale(long elapsed) => elapsed > _tracking.StaleAfterTicks;

    // The estimate decays toward zero over the time since its last observation.
    private double Decayed(double estimate, long elapsed)
        => elapsed <= 0 || estimate == 0 ? estimate : estimate * Math.Exp(-elapsed * _tracking.InverseDecayTicks);

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
            var elapsed = Math.Max(0, now - Interlocked.Read(ref _ewmaTimestamp));
            double next;
            if (current < 0 || (rtt < current && IsStale(elapsed)))
            {
                // No estimate yet, or a faster answer to an estimate older than the stale limit (the answer to a probe):
                // it is the estimate, so a recovered endpoint is back at once. A slower one is damped as below, so one
                // stalled probe cannot make an endpoint look more than a quarter slower than its last estimate.
                next = rtt;
            }
            else if (rtt > current)
            {
                // Peak sensitivity, damped: a slower observation moves the estimate a quarter of the way at once, at most
                // by a quarter (PeakGrowth), so an endpoint turning ten times slower looks twice as slow after three
                // answers and five times after eight, while one stalled answer (a pause on the client, one slow request)
                // cannot make a fast endpoint look slow, nor so slow that it gets no answers left to correct the estimate.
                next = Math.Min(current + (tracking.PeakWeight * (rtt - current)), current * tracking.PeakGrowth);
            }
            else
            {
                // Averaged in with the larger of the time-based weight (1 - e^(-Δt/decay)) and the per-answer weight.
                var keep = Math.Min(Math.Exp(-elapsed * tracking.InverseDecayTicks), 1 - tracking.SampleWeight);
                next = (current * keep) + (rtt * (1 - keep));
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
}
