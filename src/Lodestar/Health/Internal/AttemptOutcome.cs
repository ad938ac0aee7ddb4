namespace Lodestar.Health.Internal;

/// <summary>How one attempt ended, as outlier detection and circuit breakers see it.</summary>
internal enum AttemptOutcome
{
    /// <summary>A response below 500.</summary>
    Success,

    /// <summary>A 5xx response other than 502, 503 and 504.</summary>
    ServerError,

    /// <summary>A 502, 503 or 504 response, or a local-origin failure after connecting (broken connection, timeout).</summary>
    GatewayFailure,

    /// <summary>
    /// The connection could not be established (refused, unreachable, connect timeout, TLS handshake). Counts as a
    /// gateway failure and a 5xx, and names the ejection <see cref="EjectionReasons.ConnectFailure"/> when a streak of
    /// them ejects the endpoint.
    /// </summary>
    ConnectFailure,
}
