using System.Net.Sockets;
using Lodestar.Health.Internal;
using Lodestar.Http;
using Lodestar.LoadBalancing;

namespace Lodestar.Resilience.Internal;

/// <summary>
/// The one place that reads what went wrong with an attempt: for the retry decision (may it be sent elsewhere, and
/// did it reach a server), for outlier detection and breakers (<see cref="AttemptOutcome"/>), and for metrics and logs
/// (the reason).
/// </summary>
internal static class FailureClassifier
{
    /// <summary>The connection could not be established (refused, unreachable, TLS handshake): the request never left.</summary>
    public const string ConnectFailure = "connect_failure";

    /// <summary>The connect timeout of the handler fired: the request never left.</summary>
    public const string ConnectTimeout = "connect_timeout";

    /// <summary>
    /// HTTP/2 <c>REFUSED_STREAM</c>, or a graceful <c>GOAWAY</c> (<c>NO_ERROR</c>) whose last stream id is below the
    /// request's: the server guarantees it did not process the request (RFC 9113, sections 6.8 and 8.7).
    /// </summary>
    public const string RefusedStream = "refused_stream";

    /// <summary>The connection broke before response headers arrived; the server may have processed the request.</summary>
    public const string ConnectionLost = "connection_lost";

    /// <summary>The attempt's per-try timeout fired before response headers arrived.</summary>
    public const string PerTryTimeout = "per_try_timeout";

    /// <summary>Reads a failed attempt.</summary>
    /// <param name="exception">What the transport threw.</param>
    /// <param name="perTryTimedOut">Whether the attempt's own per-try timeout fired.</param>
    /// <param name="abandoned">Whether the caller, the overall deadline or a winning hedge ended the attempt.</param>
    public static AttemptFailure Classify(Exception exception, bool perTryTimedOut, bool abandoned)
    {
        if (abandoned)
        {
            // No verdict on the endpoint, and never retried.
            return new AttemptFailure(null, NeverSent: false, Outcome: null);
        }

        if (perTryTimedOut)
        {
            return new AttemptFailure(PerTryTimeout, NeverSent: false, AttemptOutcome.GatewayFailure);
        }

        var reason = ClassifyException(exception, out var neverSent);
        var outcome = reason is ConnectFailure or ConnectTimeout ? AttemptOutcome.ConnectFailure : AttemptOutcome.GatewayFailure;
        return new AttemptFailure(reason, neverSent, outcome);
    }

    /// <summary>Reads a response status as outlier detection and breakers count it.</summary>
    public static AttemptOutcome Classify(int statusCode)
        => statusCode < 500 ? AttemptOutcome.Success : statusCode is 502 or 503 or 504 ? AttemptOutcome.GatewayFailure : AttemptOutcome.ServerError;

    /// <summary>Gets whether a response is a gRPC call's (<c>content-type: application/grpc</c>, with or without a suffix).</summary>
    public static bool IsGrpc(HttpResponseMessage response) => IsGrpc(response.Content);

    /// <summary>
    /// Gets whether the answer to <paramref name="request"/> is a gRPC call's. A gRPC call always sends a body typed
    /// <c>application/grpc</c>, so the request is looked at first: an ordinary response's content headers are then not
    /// created just to be read.
    /// </summary>
    public static bool IsGrpc(HttpRequestMessage request, HttpResponseMessage response) => IsGrpc(request.Content) && IsGrpc(response.Content);

    private static bool IsGrpc(HttpContent? content)
        => content?.Headers.ContentType?.MediaType is { } media && media.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase);

    /// <summary>Reads a <c>grpc-status</c> as outlier detection and breakers count it.</summary>
    public static AttemptOutcome ClassifyGrpc(int grpcStatus, GrpcStatusOptions options)
        => !options.IsFailure(grpcStatus) ? AttemptOutcome.Success
            : grpcStatus == GrpcStatusOptions.Unavailable ? AttemptOutcome.GatewayFailure : AttemptOutcome.ServerError;

    /// <summary>
    /// Reads a gRPC response's outcome from what arrived with its headers: the HTTP status when it is not 200, the
    /// <c>grpc-status</c> header of a Trailers-Only response; <see langword="null"/> when the status comes in the trailers.
    /// </summary>
    public static AttemptOutcome? ClassifyGrpcHeaders(HttpResponseMessage response, GrpcStatusOptions options)
    {
        var status = (int)response.StatusCode;
        if (status != 200)
        {
            return status >= 500 ? Classify(status) : AttemptOutcome.Success;
        }

        return TryGetGrpcStatus(response.Headers, out var grpcStatus) ? ClassifyGrpc(grpcStatus, options) : null;
    }

    /// <summary>
    /// Reads a gRPC response's outcome from its trailers once the body was read to its end; a response without a
    /// <c>grpc-status</c> ended badly (a proxy cut it, the server died) and counts as a gateway failure.
    /// </summary>
    public static AttemptOutcome ClassifyGrpcTrailers(HttpResponseMessage response, GrpcStatusOptions options)
        => TryGetGrpcStatus(response.TrailingHeaders, out var grpcStatus) ? ClassifyGrpc(grpcStatus, options)
            : TryGetGrpcStatus(response.Headers, out grpcStatus) ? ClassifyGrpc(grpcStatus, options) : AttemptOutcome.GatewayFailure;

    /// <summary>Maps an outcome to the public form.</summary>
    public static EndpointOutcome ToPublic(AttemptOutcome outcome) => outcome switch
    {
        AttemptOutcome.Success => EndpointOutcome.Success,
        AttemptOutcome.ServerError => EndpointOutcome.ServerError,
        AttemptOutcome.ConnectFailure => EndpointOutcome.ConnectFailure,
        _ => EndpointOutcome.GatewayFailure,
    };

    /// <summary>Gets whether a method may be sent twice without harm (RFC 9110 §9.2.2).</summary>
    public static bool IsIdempotent(HttpMethod method)
        => method == HttpMethod.Get || method == HttpMethod.Head || method == HttpMethod.Options || method == HttpMethod.Put
           || method == HttpMethod.Delete || method == HttpMethod.Trace;

    /// <summary>Reads the public outcome of a failed attempt whose caller saw only the exception (a gRPC channel's balancer).</summary>
    public static EndpointOutcome ClassifyPublic(Exception exception)
    {
        var failure = Classify(exception, perTryTimedOut: false, abandoned: false);

        // A cancellation that is not the handler's connect timeout is the caller's (deadline, cancelled call).
        return exception is OperationCanceledException && failure.Reason is null ? EndpointOutcome.Abandoned
            : failure.Outcome is { } outcome ? ToPublic(outcome) : EndpointOutcome.Abandoned;
    }

    private static bool TryGetGrpcStatus(System.Net.Http.Headers.HttpHeaders headers, out int status)
    {
        // NonValidated: reading a header this way neither parses nor allocates.
        if (headers.NonValidated.TryGetValues("grpc-status", out var values))
        {
            foreach (var value in values)
            {
                return int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out status);
            }
        }

        status = 0;
        return false;
    }

    private static string? ClassifyException(Exception exception, out bool neverSent)
    {
        neverSent = false;
        if (exception is OperationCanceledException)
        {
            // Not the caller's token, so SocketsHttpHandler's ConnectTimeout fired: the request never left.
            neverSent = exception.InnerException is TimeoutException || exception.InnerException?.InnerException is TimeoutException;
            return neverSent ? ConnectTimeout : null;
        }

        if (exception is HttpRequestException hre)
        {
            switch (hre.HttpRequestError)
            {
                case HttpRequestError.ConnectionError:
                case HttpRequestError.NameResolutionError:
                case HttpRequestError.SecureConnectionError:
                    neverSent = true;
                    return ConnectFailure;
                // REFUSED_STREAM; or NO_ERROR, which SocketsHttpHandler gives a request only when a GOAWAY's last
                // stream id is below the request's stream (a connection that breaks fails its streams otherwise), and
                // only when it could not send the request again itself because it had begun to write the body.
                case HttpRequestError.HttpProtocolError when hre.InnerException is HttpProtocolException { ErrorCode: 0x7 or 0x0 }:
                    neverSent = true;
                    return RefusedStream;
                case HttpRequestError.UserAuthenticationError:
                case HttpRequestError.ConfigurationLimitExceeded:
                case HttpRequestError.VersionNegotiationError:
                case HttpRequestError.ProxyTunnelError:
                    // Not worth a retry anywhere: the same configuration fails everywhere.
                    return null;
            }

            if (hre.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.HostUnreachable or SocketError.NetworkUnreachable })
            {
                neverSent = true;
                return ConnectFailure;
            }
        }

        return exception is HttpRequestException or IOException ? ConnectionLost : null;
    }
}

/// <summary>What <see cref="FailureClassifier"/> found.</summary>
/// <param name="Reason">Why the attempt failed, when another endpoint may be tried; <see langword="null"/> when it must not be retried.</param>
/// <param name="NeverSent">Whether the request cannot have reached a server, so any method may be sent again.</param>
/// <param name="Outcome">The outcome for outlier detection and breakers; <see langword="null"/> when the attempt was abandoned.</param>
internal readonly record struct AttemptFailure(string? Reason, bool NeverSent, AttemptOutcome? Outcome);
