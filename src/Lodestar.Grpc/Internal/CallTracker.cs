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
/// </remarks>
internal sealed class CallTracker : ISubchannelCallTracker
{
    /// <summary>The request option under which the picker leaves the tracker for <see cref="GrpcOutcomeHandler"/>.</summary>
    public static readonly HttpRequestOptionsKey<CallTracker> Key = new("Lodestar.Grpc.CallTracker");

    private readonly GrpcStatusOptions _grpc;
    private EndpointAttempt _attempt;
    private long _headersLatencyTicks = -1;
    private int _observed;
    private int _finished;

    public CallTracker(EndpointAttempt attempt, GrpcStatusOptions grpc, HttpRequestMessage? request)
    {
        _attempt = attempt;
        _grpc = grpc;
        request?.Options.Set(Key, this);
    }

    /// <summary>Gets the endpoint the call goes to.</summary>
    public EndpointState Endpoint => _attempt.Endpoint!;

    public void Start() => _attempt = _attempt.Start();

    public void Complete(CompletionContext context)
    {
        if (context.Error is { } error)
        {
            Finish(EndpointOutcomes.FromException(error));
            return;
        }

        Volatile.Write(ref _headersLatencyTicks, _attempt.Elapsed.Ticks);
        if (Volatile.Read(ref _observed) == 0)
        {
            // No outcome handler in the chain: the headers are all there is to go by.
            Finish(EndpointOutcome.Success);
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

        if (!_attempt.IsStarted)
        {
            // grpc-dotnet dropped the pick before sending (the subchannel stopped being ready).
            _attempt.Cancel();
            return;
        }

        var ticks = Volatile.Read(ref _headersLatencyTicks);
        _attempt.Complete(outcome, ticks >= 0 ? TimeSpan.FromTicks(ticks) : _attempt.Elapsed);
    }
}
