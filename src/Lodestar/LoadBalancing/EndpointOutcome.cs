namespace Lodestar.LoadBalancing;

/// <summary>How one attempt on an endpoint ended, as passive outlier detection and circuit breakers count it.</summary>
public enum EndpointOutcome
{
    /// <summary>The endpoint answered and the answer is not a failure (HTTP below 500, or a gRPC status not counted as one).</summary>
    Success,

    /// <summary>A server error: HTTP 5xx other than 502, 503 and 504, or a gRPC status counted as a failure other than <c>UNAVAILABLE</c>.</summary>
    ServerError,

    /// <summary>
    /// A gateway failure: HTTP 502, 503 or 504, gRPC <c>UNAVAILABLE</c>, or a failure after connecting (the connection
    /// broke, the response ended without a status).
    /// </summary>
    GatewayFailure,

    /// <summary>The connection could not be established (refused, unreachable, connect timeout, TLS handshake).</summary>
    ConnectFailure,

    /// <summary>The caller gave up (cancelled, deadline, a winning hedge): no verdict on the endpoint.</summary>
    Abandoned,
}
