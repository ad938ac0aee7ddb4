using Lodestar.LoadBalancing;

namespace Lodestar.Resilience.Internal;

/// <summary>
/// The end of one attempt: a response, or a failure with the reason it may be retried. A struct: one attempt must not
/// cost a heap object of its own.
/// </summary>
internal readonly struct AttemptResult
{
    private AttemptResult(EndpointState endpoint, HttpResponseMessage? response, Exception? error, AttemptFailure failure, bool timedOut)
    {
        Endpoint = endpoint;
        Response = response;
        Error = error;
        Failure = failure;
        TimedOut = timedOut;
    }

    /// <summary>Gets the endpoint the attempt went to.</summary>
    public EndpointState Endpoint { get; }

    /// <summary>Gets the response, or <see langword="null"/> when the attempt failed.</summary>
    public HttpResponseMessage? Response { get; }

    /// <summary>Gets what the transport threw, or <see langword="null"/> when there is a response.</summary>
    public Exception? Error { get; }

    /// <summary>Gets why the attempt failed (reason, whether it was sent); default for a response.</summary>
    public AttemptFailure Failure { get; }

    /// <summary>Gets whether the attempt's per-try timeout ended it.</summary>
    public bool TimedOut { get; }

    /// <summary>Gets whether the attempt failed in a way that another endpoint may be tried for.</summary>
    public bool IsRetryableFailure => Response is null && Failure.Reason is not null;

    public static AttemptResult FromResponse(EndpointState endpoint, HttpResponseMessage response) => new(endpoint, response, null, default, false);

    public static AttemptResult FromFailure(EndpointState endpoint, Exception error, AttemptFailure failure, bool timedOut)
        => new(endpoint, null, error, failure, timedOut);
}
