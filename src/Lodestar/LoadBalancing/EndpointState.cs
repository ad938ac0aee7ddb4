using Lodestar.Endpoints;

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
    private ServiceEndpoint _endpoint;
    private int _inFlight;
    private long _requests;
    private long _failures;
    private int _consecutiveFailures;
    private long _lastLatencyTicks;
    private readonly long _addedTimestamp;

    internal EndpointState(ServiceEndpoint endpoint, long addedTimestamp)
    {
        _endpoint = endpoint;
        _addedTimestamp = addedTimestamp;
    }

    /// <summary>Gets the endpoint as the source last described it (weight, zone and metadata may change over time).</summary>
    public ServiceEndpoint Endpoint => Volatile.Read(ref _endpoint);

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

    internal void SetEndpoint(ServiceEndpoint endpoint) => Volatile.Write(ref _endpoint, endpoint);

    internal void SetEjected(bool ejected) => Volatile.Write(ref _ejected, ejected);

    internal void SetActiveHealthy(bool healthy) => Volatile.Write(ref _activeHealthy, healthy);

    internal void SetBreakerOpen(bool open) => Volatile.Write(ref _breakerOpen, open);

    /// <summary>Records that a request was sent to the endpoint.</summary>
    internal void OnRequestStarted()
    {
        Interlocked.Increment(ref _inFlight);
        Interlocked.Increment(ref _requests);
    }

    /// <summary>Records the end of a request started with <see cref="OnRequestStarted"/>.</summary>
    internal void OnRequestCompleted(bool success, TimeSpan latency)
    {
        Interlocked.Decrement(ref _inFlight);
        Interlocked.Exchange(ref _lastLatencyTicks, latency.Ticks);
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
}
