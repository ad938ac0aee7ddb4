namespace Lodestar.Health;

/// <summary>
/// Passive outlier detection for one service, with Envoy's semantics and defaults: endpoints that fail in a row, or
/// whose success rate or failure percentage stands out over an interval, are ejected for a time that grows with each
/// ejection.
/// </summary>
/// <remarks>
/// Local-origin failures (refused or timed-out connections, broken connections, per-try timeouts) count as gateway
/// failures and as 5xx, as in Envoy when <c>split_external_local_origin_errors</c> is off. Detection is per service:
/// when several clients share a service and balancing policy, the settings of the first client to send a request apply.
/// </remarks>
public sealed class OutlierDetectionOptions
{
    /// <summary>Gets or sets whether outlier detection runs. Default <see langword="true"/>.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Gets or sets how often the success-rate and failure-percentage checks run and ejected endpoints are considered
    /// for return. Default 10 seconds (Envoy's <c>interval</c>); range 10 ms to 10 minutes.
    /// </summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Gets or sets the ejection time of a first ejection; the n-th ejection in a row lasts n times this, up to
    /// <see cref="MaxEjectionTime"/>. Default 30 seconds (Envoy's <c>base_ejection_time</c>); range 10 ms to 1 hour.
    /// </summary>
    public TimeSpan BaseEjectionTime { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Gets or sets the longest ejection. Default 300 seconds (Envoy's <c>max_ejection_time</c>); at least <see cref="BaseEjectionTime"/>.</summary>
    public TimeSpan MaxEjectionTime { get; set; } = TimeSpan.FromSeconds(300);

    /// <summary>
    /// Gets or sets the largest share of the service's endpoints that may be ejected at once, in percent; one endpoint
    /// may always be ejected, as in Envoy. Default 10; range 0 to 100.
    /// </summary>
    public int MaxEjectionPercent { get; set; } = 10;

    /// <summary>Gets or sets how many 5xx responses or local-origin failures in a row eject an endpoint; 0 turns the check off. Default 5.</summary>
    public int ConsecutiveServerErrors { get; set; } = 5;

    /// <summary>Gets or sets the chance in percent that a consecutive-5xx detection ejects. Default 100; range 0 to 100.</summary>
    public int EnforcingConsecutiveServerErrors { get; set; } = 100;

    /// <summary>
    /// Gets or sets how many gateway failures in a row (502, 503, 504 or a local-origin failure) eject an endpoint; 0
    /// turns the check off. Default 5.
    /// </summary>
    public int ConsecutiveGatewayFailures { get; set; } = 5;

    /// <summary>
    /// Gets or sets the chance in percent that a consecutive-gateway-failure detection ejects. Default 0, as in Envoy
    /// (the 5xx check already covers gateway failures); set 100 to eject crashed endpoints after fewer failures than
    /// <see cref="ConsecutiveServerErrors"/>. Range 0 to 100.
    /// </summary>
    public int EnforcingConsecutiveGatewayFailures { get; set; }

    /// <summary>
    /// Gets or sets the chance in percent that a success-rate detection ejects: an endpoint is an outlier when its
    /// success rate over the interval is below mean − <see cref="SuccessRateStdevFactor"/> × standard deviation of all
    /// qualifying endpoints. Default 100; range 0 to 100.
    /// </summary>
    public int EnforcingSuccessRate { get; set; } = 100;

    /// <summary>Gets or sets how many endpoints must have <see cref="SuccessRateRequestVolume"/> requests in the interval for the success-rate check to run. Default 5.</summary>
    public int SuccessRateMinimumHosts { get; set; } = 5;

    /// <summary>Gets or sets the requests an endpoint needs in the interval to take part in the success-rate check. Default 100.</summary>
    public int SuccessRateRequestVolume { get; set; } = 100;

    /// <summary>Gets or sets the standard-deviation factor of the success-rate check. Default 1.9 (Envoy's 1900 / 1000).</summary>
    public double SuccessRateStdevFactor { get; set; } = 1.9;

    /// <summary>
    /// Gets or sets the chance in percent that a failure-percentage detection ejects: an endpoint is an outlier when at
    /// least <see cref="FailurePercentageThreshold"/> percent of its requests in the interval failed. Default 0, as in
    /// Envoy; range 0 to 100.
    /// </summary>
    public int EnforcingFailurePercentage { get; set; }

    /// <summary>Gets or sets the failure percentage at or above which an endpoint is an outlier. Default 85; range 0 to 100.</summary>
    public int FailurePercentageThreshold { get; set; } = 85;

    /// <summary>Gets or sets how many endpoints must have <see cref="FailurePercentageRequestVolume"/> requests in the interval for the failure-percentage check to run. Default 5.</summary>
    public int FailurePercentageMinimumHosts { get; set; } = 5;

    /// <summary>Gets or sets the requests an endpoint needs in the interval to take part in the failure-percentage check. Default 50.</summary>
    public int FailurePercentageRequestVolume { get; set; } = 50;
}
