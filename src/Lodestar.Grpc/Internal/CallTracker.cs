using Grpc.Net.Client.Balancer;
using Lodestar.Http;
using Lodestar.LoadBalancing;

namespace Lodestar.Grpc.Internal;

/// <summary>
/// One call's attempt on the endpoint its picker chose: started when grpc-dotnet sends the call, ended once with the
/// call's outcome.
/// </summary>
/// <remarks>
/// grpc-dotnet completes a tracker when response headers arrive (or the send fails), before the call's
/// <c>grpc-status</c> is known unless the response is Trailers-Only. When <see cref="GrpcOutcomeHandler"/> is in the
/// channel's handler chain it finds the tracker on the request and reports the status instead, from the headers or,
/// at the end of the body, from the trailers; the latency recorded is still the time to response headers, so a long
/// stream does not look slow. The call counts in flight until its status is known.
/// <para>
/// A call whose connection could not be made (refused, timed out: it never reached a server) can be moved to another
/// endpoint by <see cref="TryReroute"/>, which the outcome handler calls before the failure reaches the caller: the
/// channel's subchannel to an instance that has just gone may still look ready for a moment.
/// </para>
/// </remarks>
internal sealed class CallTracker : ISubchannelCallTracker
{
    /// <summary>The request option under which the picker leaves the tracker for <see cref="GrpcOutcomeHandler"/>.</summary>
    public static readonly HttpRequestOptionsKey<CallTracker> Key = new("Lodestar.Grpc.CallTracker");

    private readonly CallTracker?[] _pool;
    private GrpcStatusOptions _grpc = null!;
    private LodestarPicker? _picker;
    private Lodestar.LoadBalancing.PickContext _pick;
    private HttpRequestMessage? _request;
    private List<EndpointState>? _tried;
    private EndpointAttempt _attempt;
    private long _headersLatencyTicks = -1;
    private int _observed;
    private int _finished;

    // Complete and Finish each release one; the last returns the tracker to the pool.
    private int _holds;

    // Guards _attempt between Start, TryReroute and Finish: a connection can fail on another thread while grpc-dotnet
    // is still starting the tracker. A spin gate: held for a few instructions.
    private int _gate;

    private CallTracker(CallTracker?[] pool) => _pool = pool;

    /// <summary>
    /// Gets the trackers that served a call, for the next ones. A tracker comes back once grpc-dotnet has completed it
    /// and its outcome is reported, the only two things that can still reach it; one that misses either (a pick
    /// grpc-dotnet dropped, a body never read nor disposed) is left to the collector.
    /// </summary>
    public static CallTracker?[] SharedPool { get; } = new CallTracker?[16];

    /// <summary>Takes a tracker for a call (a pooled one when there is one) and leaves it on the request for <see cref="GrpcOutcomeHandler"/>.</summary>
    public static CallTracker Rent(EndpointAttempt attempt, GrpcStatusOptions grpc, HttpRequestMessage? request, LodestarPicker? picker = null,
        Lodestar.LoadBalancing.PickContext pick = default, CallTracker?[]? pool = null)
    {
        pool ??= SharedPool;
        var tracker = TakePooled(pool) ?? new CallTracker(pool);
        tracker._attempt = attempt;
        tracker._grpc = grpc;
        tracker._picker = picker;
        tracker._pick = pick;
        tracker._request = request;
        tracker._holds = 2;
        request?.Options.Set(Key, tracker);
        return tracker;
    }

    /// <summary>Gets the endpoint the call goes to.</summary>
    public EndpointState Endpoint => _attempt.Endpoint!;

    /// <summary>Whether the tracker serves <paramref name="request"/>: one left on an earlier call's request may serve another call by now.</summary>
    public bool IsFor(HttpRequestMessage request) => ReferenceEquals(Volatile.Read(ref _request), request);

    public void Start()
    {
        Enter();
        try
        {
            // A call moved by TryReroute before grpc-dotnet started the tracker is already started on its new endpoint.
            if (!_attempt.IsStarted && Volatile.Read(ref _finished) == 0)
            {
                _attempt = _attempt.Start();
            }
        }
        finally
        {
            Exit();
        }
    }

    public void Complete(CompletionContext context)
    {
        if (context.Error is { } error)
        {
            Finish(EndpointOutcomes.FromException(error));
        }
        else
        {
            Volatile.Write(ref _headersLatencyTicks, _attempt.Elapsed.Ticks);
            if (Volatile.Read(ref _observed) == 0)
            {
                // No outcome handler in the chain: the headers are all there is to go by.
                Finish(EndpointOutcome.Success);
            }
        }

        Release();
    }

    /// <summary>
    /// Ends the attempt on the current endpoint with <paramref name="error"/> (a connection that could not be made) and
    /// starts one on another endpoint with a ready subchannel, if there is one the call has not tried.
    /// </summary>
    /// <returns><see langword="false"/> when the call has no other endpoint to go to; the attempt is then left as it was.</returns>
    public bool TryReroute(Exception error, out Subchannel subchannel, out BalancerAddress address)
    {
        subchannel = null!;
        address = null!;
        if (_picker is null)
        {
            return false;
        }

        Enter();
        try
        {
            if (Volatile.Read(ref _finished) != 0)
            {
                return false;
            }

            _tried ??= new List<EndpointState>(4);
            _tried.Add(_attempt.Endpoint!);
            if (!_picker.TryPickAnother(_pick, _tried, out var next, out subchannel))
            {
                return false;
            }

            if ((subchannel.CurrentAddress ?? (subchannel.GetAddresses() is { Count: > 0 } all ? all[0] : null)) is not { } current)
            {
                next.Cancel();
                return false;
            }

            address = current;
            var failed = _attempt;
            if (failed.IsStarted)
            {
                failed.Complete(EndpointOutcomes.FromException(error), failed.Elapsed);
            }
            else
            {
                failed.Cancel();
            }

            _attempt = next.Start();
            return true;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Reads the call's status from its response (see <see cref="GrpcOutcomeHandler"/>).</summary>
    public void Observe(HttpResponseMessage response)
    {
        Volatile.Write(ref _observed, 1);
        EndpointOutcomes.ObserveGrpcResponse(response, _grpc, static (outcome, state) => ((CallTracker)state!).Finish(outcome), this);
    }

    private void Finish(EndpointOutcome outcome)
    {
        if (Interlocked.Exchange(ref _finished, 1) != 0)
        {
            return;
        }

        Enter();
        var attempt = _attempt;
        Exit();
        if (!attempt.IsStarted)
        {
            // grpc-dotnet dropped the pick before sending (the subchannel stopped being ready).
            attempt.Cancel();
        }
        else
        {
            var ticks = Volatile.Read(ref _headersLatencyTicks);
            attempt.Complete(outcome, ticks >= 0 ? TimeSpan.FromTicks(ticks) : attempt.Elapsed);
        }

        Release();
    }

    private static CallTracker? TakePooled(CallTracker?[] pool)
    {
        for (var i = 0; i < pool.Length; i++)
        {
            if (Volatile.Read(ref pool[i]) is not null && Interlocked.Exchange(ref pool[i], null) is { } tracker)
            {
                return tracker;
            }
        }

        return null;
    }

    /// <summary>Gives up one hold; the last clears the tracker (it keeps nothing of the call alive) and pools it.</summary>
    private void Release()
    {
        if (Interlocked.Decrement(ref _holds) != 0)
        {
            return;
        }

        Volatile.Write(ref _request, null);
        _grpc = null!;
        _picker = null;
        _pick = default;
        _tried?.Clear();
        _attempt = default;
        _headersLatencyTicks = -1;
        _observed = 0;
        _finished = 0;
        var pool = _pool;
        for (var i = 0; i < pool.Length; i++)
        {
            if (Volatile.Read(ref pool[i]) is null && Interlocked.CompareExchange(ref pool[i], this, null) is null)
            {
                return;
            }
        }
    }

    private void Enter()
    {
        var spin = default(SpinWait);
        while (Interlocked.CompareExchange(ref _gate, 1, 0) != 0)
        {
            spin.SpinOnce();
        }
    }

    private void Exit() => Volatile.Write(ref _gate, 0);
}
