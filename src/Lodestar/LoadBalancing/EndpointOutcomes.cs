using Lodestar.Health.Internal;
using Lodestar.Http;
using Lodestar.Resilience.Internal;

namespace Lodestar.LoadBalancing;

/// <summary>
/// Reads how an attempt ended the way the <see cref="HttpClient"/> handler reads it, for callers that report attempts
/// through <see cref="EndpointAttempt"/> themselves.
/// </summary>
public static class EndpointOutcomes
{
    /// <summary>Reads a failed attempt from what the transport threw.</summary>
    /// <param name="exception">The exception.</param>
    /// <returns>
    /// <see cref="EndpointOutcome.ConnectFailure"/> when the connection could not be made, <see cref="EndpointOutcome.Abandoned"/>
    /// for a cancellation (the caller's or a deadline), otherwise <see cref="EndpointOutcome.GatewayFailure"/>.
    /// </returns>
    public static EndpointOutcome FromException(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return FailureClassifier.ClassifyPublic(exception);
    }

    /// <summary>
    /// Reports a gRPC response's outcome once: at once when its headers settle it (an HTTP status other than 200, or a
    /// Trailers-Only response with <c>grpc-status</c>), otherwise when its body has been read to the end, from the
    /// trailers. A body that fails while being read is a <see cref="EndpointOutcome.GatewayFailure"/>; one disposed
    /// before its end (the call was cancelled) is <see cref="EndpointOutcome.Abandoned"/>.
    /// </summary>
    /// <param name="response">The response; its <see cref="HttpResponseMessage.Content"/> may be replaced by a wrapper.</param>
    /// <param name="options">Which gRPC statuses count as failures.</param>
    /// <param name="onOutcome">Called once with the outcome and <paramref name="state"/>; must not block.</param>
    /// <param name="state">Passed to <paramref name="onOutcome"/>.</param>
    public static void ObserveGrpcResponse(HttpResponseMessage response, GrpcStatusOptions options, Action<EndpointOutcome, object?> onOutcome, object? state)
    {
        ArgumentNullException.ThrowIfNull(response);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(onOutcome);
        if (!FailureClassifier.IsGrpc(response))
        {
            onOutcome(FailureClassifier.ToPublic(FailureClassifier.Classify((int)response.StatusCode)), state);
            return;
        }

        if (FailureClassifier.ClassifyGrpcHeaders(response, options) is { } outcome)
        {
            onOutcome(FailureClassifier.ToPublic(outcome), state);
            return;
        }

        GrpcTrailers.Watch(response, options, onOutcome, state);
    }
}
