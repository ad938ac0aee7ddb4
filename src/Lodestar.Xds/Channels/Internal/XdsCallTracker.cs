using Grpc.Net.Client.Balancer;
using Lodestar.Http;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.Xds.Routing;

namespace Lodestar.Xds.Channels.Internal;

/// <summary>
/// One call of an <c>xds:///</c> channel on the cluster its route chose: its current attempt on an endpoint, the
/// route's settings (deadline, retry policy) and what a retry needs to pick another endpoint of the same cluster.
/// </summary>
/// <remarks>
/// grpc-dotnet completes a tracker when the response headers arrive (or the send fails), before the call's
/// <c>grpc-status</c> is known unless the response is Trailers-Only. When <see cref="XdsCallHandler"/> is in the
/// channel's handler chain it finds the tracker on the request and reports each attempt's status instead, from the
/// headers or, at the end of the body, from the trailers; the latency recorded is the time to response headers. An
/// attempt counts in the cluster's calls in flight (<c>max_requests</c>) from when it is sent until its outcome is known.
/// <para>
/// The handler runs between grpc-dotnet's <see cref="Start"/> and <see cref="Complete"/>, so a retry swaps the attempt
/// while nothing else touches it; only the final attempt's trailers may arrive on another thread, which the
/// once-only finish guards.
/// </para>
/// </remarks>
internal sealed class XdsCallTracker : ISubchannelCallTracker
{
    /// <summary>The request option under which the picker leaves the tracker for <see cref="XdsCallHandler"/>.</summary>
    public static readonly HttpRequestOptionsKey<XdsCallTracker> Key = new("Lodestar.Xds.CallTracker");

    private readonly ClusterBalancer _cluster;
    private readonly XdsClusterCallCounters.Counter _calls;
    private readonly BalancedService? _service;
    private readonly ReadySubchannels? _ready;
    private readonly Lodestar.LoadBalancing.PickContext _pick;
    private List<EndpointState>? _tried;
    private EndpointAttempt _attempt;
    private int _observed;
    private int _finished;
    private int _isRetry;

    public XdsCallTracker(EndpointAttempt attempt, ClusterBalancer cluster, HttpRequestMessage? request = null, XdsCallRoute? route = null,
        BalancedService? service = null, ReadySubchannels? ready = null, Lodestar.LoadBalancing.PickContext pick = default)
    {
        _attempt = attempt;
        _cluster = cluster;
        _calls = cluster.Calls;
        Route = route;
        _service = service;
        _ready = ready;
        _pick = pick;
        request?.Options.Set(Key, this);
    }

    /// <summary>Gets the route settings of the call, or <see langword="null"/> when the picker had none to give.</summary>
    public XdsCallRoute? Route { get; }

    /// <summary>Gets the endpoint of the current attempt.</summary>
    public EndpointState Endpoint => _attempt.Endpoint!;

    /// <summary>Counts the call in flight on its endpoint and its cluster, until its outcome is known.</summary>
    /// <remarks>
    /// The cluster's count starts here, when the call is sent, not at the pick: grpc-dotnet may drop a pick whose
    /// subchannel stopped being ready without completing its tracker, and such a pick must not hold a slot.
    /// </remarks>
    public void Start()
    {
        _attempt = _attempt.Start();
        _calls.Enter();
    }

    public void Complete(CompletionContext context)
    {
        if (context.Error is { } error)
        {
            Finish(EndpointOutcomes.FromException(error));
            return;
        }

        if (Volatile.Read(ref _observed) == 0)
        {
            // No outcome handler in the chain: the headers are all there is to go by.
            Finish(EndpointOutcome.Success);
        }
    }

    /// <summary>Reports the current attempt's outcome from its response: at once for Trailers-Only, else from the trailers.</summary>
    public void Observe(HttpResponseMessage response, GrpcStatusOptions options)
    {
        Volatile.Write(ref _observed, 1);
        EndpointOutcomes.ObserveGrpcResponse(response, options, static (outcome, state) => ((XdsCallTracker)state!).Finish(outcome), this);
    }

    /// <summary>Ends the current attempt with what the transport threw (the handler stopped it, or it failed).</summary>
    public void Fail(Exception error) => Finish(EndpointOutcomes.FromException(error));

    /// <summary>
    /// Starts the next attempt of a retry on the same cluster: another endpoint with a ready subchannel when there is one
    /// the call has not tried, else whichever endpoint the cluster's balancer picks. The previous attempt must be finished.
    /// </summary>
    /// <returns>
    /// <see langword="false"/> when the cluster has <c>max_retries</c> retries in flight (its circuit breaker), or no
    /// endpoint with a ready subchannel for it.
    /// </returns>
    public bool TryStartRetry(out Subchannel subchannel, out BalancerAddress address)
    {
        subchannel = null!;
        address = null!;
        if (_service is null || _ready is null || Volatile.Read(ref _finished) == 0)
        {
            return false;
        }

        // The cluster's circuit breaker: at most max_retries retries in flight over every channel (Envoy's default 3).
        if (!_calls.TryEnterRetry(_cluster.MaxRetries))
        {
            return false;
        }

        if (!TryPickRetry(out subchannel, out address))
        {
            _calls.ExitRetry();
            return false;
        }

        Volatile.Write(ref _isRetry, 1);
        return true;
    }

    private bool TryPickRetry(out Subchannel subchannel, out BalancerAddress address)
    {
        address = null!;
        var service = _service!;
        var ready = _ready!;
        _tried ??= new List<EndpointState>(4);
        _tried.Add(_attempt.Endpoint!);
        var tried = new List<EndpointState>(_tried);
        EndpointAttempt next;
        if (!ready.TryPickAnother(service, _pick, tried, out next, out subchannel))
        {
            // Every endpoint was tried (one endpoint, say): gRPC retries on whatever its balancer picks.
            if (!service.TryPick(_pick, out next))
            {
                return false;
            }

            if (!ready.TryGet(next.Endpoint!, out subchannel))
            {
                next.Cancel();
                return false;
            }
        }

        if ((subchannel.CurrentAddress ?? (subchannel.GetAddresses() is { Count: > 0 } all ? all[0] : null)) is not { } current)
        {
            next.Cancel();
            return false;
        }

        address = current;
        _attempt = next.Start();
        _calls.Enter();
        Volatile.Write(ref _observed, 0);
        Volatile.Write(ref _finished, 0);
        return true;
    }

    private void Finish(EndpointOutcome outcome)
    {
        if (Interlocked.Exchange(ref _finished, 1) != 0)
        {
            return;
        }

        var attempt = _attempt;
        if (!attempt.IsStarted)
        {
            // grpc-dotnet dropped the pick before sending (the subchannel stopped being ready).
            attempt.Cancel();
            return;
        }

        _calls.Exit();
        if (Interlocked.Exchange(ref _isRetry, 0) != 0)
        {
            _calls.ExitRetry();
        }

        attempt.Complete(outcome);
    }
}

/// <summary>The settings a call's route gives it on a channel: gRFC A31's deadline cap and gRFC A44's retry policy.</summary>
/// <param name="MaxStreamDuration">
/// The cap on the call's deadline (<c>grpc_timeout_header_max</c> when set, else the route's <c>max_stream_duration</c>,
/// else the listener's), or <see langword="null"/> when the application's deadline stands unchanged.
/// </param>
/// <param name="Retry">The route's (else the virtual host's) retry policy when it names a gRPC status, else <see langword="null"/>.</param>
/// <param name="ListenerMaxStreamDuration">The listener's value this was derived with.</param>
internal sealed record XdsCallRoute(TimeSpan? MaxStreamDuration, XdsGrpcRetryPolicy? Retry, TimeSpan? ListenerMaxStreamDuration)
{
    /// <summary>Gets the call settings of a matched route, cached on the route (one reference write; a race computes twice).</summary>
    /// <param name="match">The route match.</param>
    /// <param name="listenerMaxStreamDuration">The listener's <c>common_http_protocol_options.max_stream_duration</c>.</param>
    public static XdsCallRoute For(XdsRouteResult match, TimeSpan? listenerMaxStreamDuration)
    {
        if (match.Route.CallRoute is { } cached && cached.ListenerMaxStreamDuration == listenerMaxStreamDuration)
        {
            return cached;
        }

        var computed = From(match, listenerMaxStreamDuration);
        match.Route.CallRoute = computed;
        return computed;
    }

    /// <summary>Derives the call settings of a matched route.</summary>
    /// <param name="match">The route match.</param>
    /// <param name="listenerMaxStreamDuration">The listener's <c>common_http_protocol_options.max_stream_duration</c>.</param>
    public static XdsCallRoute From(XdsRouteResult match, TimeSpan? listenerMaxStreamDuration)
    {
        var action = match.Route.Action;

        // gRFC A31: grpc_timeout_header_max, when present, replaces max_stream_duration; zero means "no cap".
        var cap = action?.GrpcTimeoutHeaderMax ?? action?.MaxStreamDuration ?? listenerMaxStreamDuration;
        if (cap is { } value && value <= TimeSpan.Zero)
        {
            cap = null;
        }

        return new XdsCallRoute(cap, XdsGrpcRetryPolicy.From(match.RetryPolicy), listenerMaxStreamDuration);
    }
}

/// <summary>A route's retry policy as gRPC applies it (gRFC A44).</summary>
/// <param name="MaxAttempts">Attempts in all: <c>num_retries</c> + 1, at most 5 (gRPC's limit).</param>
/// <param name="Statuses">The retryable gRPC status codes named by <c>retry_on</c>.</param>
/// <param name="InitialBackoff"><c>retry_back_off.base_interval</c> (default 25 ms).</param>
/// <param name="MaxBackoff"><c>retry_back_off.max_interval</c> (default 10 × base).</param>
internal sealed record XdsGrpcRetryPolicy(int MaxAttempts, IReadOnlySet<int> Statuses, TimeSpan InitialBackoff, TimeSpan MaxBackoff)
{
    /// <summary>gRPC's cap on attempts per call, whatever the configuration says.</summary>
    public const int AttemptLimit = 5;

    /// <summary>Maps a route's retry policy, or returns <see langword="null"/> when it names no gRPC status (gRPC then does not retry).</summary>
    public static XdsGrpcRetryPolicy? From(XdsRetryPolicy? policy)
    {
        if (policy is null)
        {
            return null;
        }

        var statuses = new HashSet<int>();
        foreach (var condition in policy.RetryOn)
        {
            int? status = condition.Trim() switch
            {
                "cancelled" => 1,
                "deadline-exceeded" => 4,
                "resource-exhausted" => 8,
                "internal" => 13,
                "unavailable" => 14,
                _ => null,
            };
            if (status is { } code)
            {
                statuses.Add(code);
            }
        }

        if (statuses.Count == 0)
        {
            return null;
        }

        var attempts = (int)Math.Clamp(policy.NumRetries + 1L, 1, AttemptLimit);
        return attempts < 2 ? null : new XdsGrpcRetryPolicy(attempts, statuses, policy.BaseInterval, policy.MaxInterval);
    }

    /// <summary>The delay before retry number <paramref name="retry"/> (1 for the first): gRPC's full jitter up to the capped exponential.</summary>
    public TimeSpan Backoff(int retry, Func<double> random)
    {
        var ceiling = InitialBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(retry - 1, 30));
        ceiling = Math.Min(ceiling, MaxBackoff.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(ceiling * Math.Clamp(random(), 0, 1));
    }
}
