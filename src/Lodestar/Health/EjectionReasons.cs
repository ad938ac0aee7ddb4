namespace Lodestar.Health;

/// <summary>
/// Why outlier detection ejected an endpoint: the values of <see cref="EndpointEjection.Reason"/>, of the
/// <c>lodestar.ejection.reason</c> tag of the <c>lodestar.endpoint.ejections</c> metric and of the ejection log line.
/// </summary>
public static class EjectionReasons
{
    /// <summary>
    /// Connections to the endpoint failed (refused, reset before sending, timed out) as many times in a row as the
    /// consecutive-failure check allows: nothing is listening, or the host is gone.
    /// </summary>
    public const string ConnectFailure = "connect_failure";

    /// <summary>5xx responses or local-origin failures in a row reached <see cref="OutlierDetectionOptions.ConsecutiveServerErrors"/>.</summary>
    public const string Consecutive5xx = "consecutive_5xx";

    /// <summary>Gateway failures in a row (502, 503, 504, local-origin failures) reached <see cref="OutlierDetectionOptions.ConsecutiveGatewayFailures"/>.</summary>
    public const string ConsecutiveGatewayFailure = "consecutive_gateway_failure";

    /// <summary>The endpoint's success rate over an interval was far below that of the others.</summary>
    public const string SuccessRate = "success_rate";

    /// <summary>The endpoint's failure percentage over an interval reached <see cref="OutlierDetectionOptions.FailurePercentageThreshold"/>.</summary>
    public const string FailurePercentage = "failure_percentage";
}
