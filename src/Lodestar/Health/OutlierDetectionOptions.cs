namespace Lodestar.Health;

/// <summary>
/// Passive outlier detection for one service, with Envoy's semantics and defaults: endpoints that fail in a row, or
/// whose success rate or failure percentage stands out over an interval, are ejected for a time that grows with each
/// ejection.
/// </summary>
/// <remarks>
/// Local-origin failures (refused or timed-out connections, broken connections, per-try timeouts) count as gateway
/// failures and as 5xx, as in Envoy when <c>split_external_local_origin_errors</c> is off.
/// Configured per service (<c>Lodestar:Services:&lt;service&gt;:OutlierDetection</c>, or
/// <c>Configure&lt;OutlierDetectionOptions&gt;("service", ...)</c>) and overridden per client
/// (<c>Lodestar:Clients:&lt;client&gt;:OutlierDetection</c>, or <c>LodestarClientOptions.OutlierDetection</c>): a property the client sets
/// wins, any other comes from the service, then the default. Clients whose resulting settings are equal share one
/// health stage for the service; clients whose settings differ each get their own, as two Envoy clusters over the same
/// endpoints would.
/// </remarks>
public sealed class OutlierDetectionOptions
{
    private int? _enforcingConsecutiveGatewayFailures;
    private int? _enforcingFailurePercentage;
    private bool? _enabled;
    private TimeSpan? _interval;
    private TimeSpan? _baseEjectionTime;
    private TimeSpan? _maxEjectionTime;
    private int? _maxEjectionPercent;
    private int? _consecutiveServerErrors;
    private int? _enforcingConsecutiveServerErrors;
    private int? _consecutiveGatewayFailures;
    private int? _enforcingSuccessRate;
    private int? _successRateMinimumHosts;
    private int? _successRateRequestVolume;
    private double? _successRateStdevFactor;
    private int? _failurePercentageThreshold;
    private int? _failurePercentageMinimumHosts;
    private int? _failurePercentageRequestVolume;

    /// <summary>Gets or sets whether outlier detection runs. Default <see langword="true"/>.</summary>
    public bool Enabled
    {
        get => _enabled ?? true;
        set => _enabled = value;
    }

    /// <summary>
    /// Gets or sets how often the success-rate and failure-percentage checks run and ejected endpoints are considered
    /// for return. Default 10 seconds (Envoy's <c>interval</c>); range 10 ms to 10 minutes.
    /// </summary>
    public TimeSpan Interval
    {
        get => _interval ?? TimeSpan.FromSeconds(10);
        set => _interval = value;
    }

    /// <summary>
    /// Gets or sets the ejection time of a first ejection; the n-th ejection in a row lasts n times this, up to
    /// <see cref="MaxEjectionTime"/>. Default 30 seconds (Envoy's <c>base_ejection_time</c>); range 10 ms to 1 hour.
    /// </summary>
    public TimeSpan BaseEjectionTime
    {
        get => _baseEjectionTime ?? TimeSpan.FromSeconds(30);
        set => _baseEjectionTime = value;
    }

    /// <summary>Gets or sets the longest ejection. Default 300 seconds (Envoy's <c>max_ejection_time</c>); at least <see cref="BaseEjectionTime"/>.</summary>
    public TimeSpan MaxEjectionTime
    {
        get => _maxEjectionTime ?? TimeSpan.FromSeconds(300);
        set => _maxEjectionTime = value;
    }

    /// <summary>
    /// Gets or sets the largest share of the service's endpoints that may be ejected at once, in percent; one endpoint
    /// may always be ejected, as in Envoy. Default 10; range 0 to 100.
    /// </summary>
    public int MaxEjectionPercent
    {
        get => _maxEjectionPercent ?? 10;
        set => _maxEjectionPercent = value;
    }

    /// <summary>Gets or sets how many 5xx responses or local-origin failures in a row eject an endpoint; 0 turns the check off. Default 5.</summary>
    public int ConsecutiveServerErrors
    {
        get => _consecutiveServerErrors ?? 5;
        set => _consecutiveServerErrors = value;
    }

    /// <summary>Gets or sets the chance in percent that a consecutive-5xx detection ejects. Default 100; range 0 to 100.</summary>
    public int EnforcingConsecutiveServerErrors
    {
        get => _enforcingConsecutiveServerErrors ?? 100;
        set => _enforcingConsecutiveServerErrors = value;
    }

    /// <summary>
    /// Gets or sets how many gateway failures in a row (502, 503, 504 or a local-origin failure) eject an endpoint; 0
    /// turns the check off. Default 5.
    /// </summary>
    public int ConsecutiveGatewayFailures
    {
        get => _consecutiveGatewayFailures ?? 5;
        set => _consecutiveGatewayFailures = value;
    }

    /// <summary>
    /// Gets or sets the chance in percent that a consecutive-gateway-failure detection ejects. Default 0, as in Envoy
    /// (the 5xx check already covers gateway failures); set 100 to eject crashed endpoints after fewer failures than
    /// <see cref="ConsecutiveServerErrors"/>. Range 0 to 100.
    /// </summary>
    public int EnforcingConsecutiveGatewayFailures
    {
        get => _enforcingConsecutiveGatewayFailures ?? 0;
        set => _enforcingConsecutiveGatewayFailures = value;
    }

    /// <summary>
    /// Gets or sets the chance in percent that a success-rate detection ejects: an endpoint is an outlier when its
    /// success rate over the interval is below mean − <see cref="SuccessRateStdevFactor"/> × standard deviation of all
    /// qualifying endpoints. Default 100; range 0 to 100.
    /// </summary>
    public int EnforcingSuccessRate
    {
        get => _enforcingSuccessRate ?? 100;
        set => _enforcingSuccessRate = value;
    }

    /// <summary>Gets or sets how many endpoints must have <see cref="SuccessRateRequestVolume"/> requests in the interval for the success-rate check to run. Default 5.</summary>
    public int SuccessRateMinimumHosts
    {
        get => _successRateMinimumHosts ?? 5;
        set => _successRateMinimumHosts = value;
    }

    /// <summary>Gets or sets the requests an endpoint needs in the interval to take part in the success-rate check. Default 100.</summary>
    public int SuccessRateRequestVolume
    {
        get => _successRateRequestVolume ?? 100;
        set => _successRateRequestVolume = value;
    }

    /// <summary>Gets or sets the standard-deviation factor of the success-rate check. Default 1.9 (Envoy's 1900 / 1000).</summary>
    public double SuccessRateStdevFactor
    {
        get => _successRateStdevFactor ?? 1.9;
        set => _successRateStdevFactor = value;
    }

    /// <summary>
    /// Gets or sets the chance in percent that a failure-percentage detection ejects: an endpoint is an outlier when at
    /// least <see cref="FailurePercentageThreshold"/> percent of its requests in the interval failed. Default 0, as in
    /// Envoy; range 0 to 100.
    /// </summary>
    public int EnforcingFailurePercentage
    {
        get => _enforcingFailurePercentage ?? 0;
        set => _enforcingFailurePercentage = value;
    }

    /// <summary>Gets or sets the failure percentage at or above which an endpoint is an outlier. Default 85; range 0 to 100.</summary>
    public int FailurePercentageThreshold
    {
        get => _failurePercentageThreshold ?? 85;
        set => _failurePercentageThreshold = value;
    }

    /// <summary>Gets or sets how many endpoints must have <see cref="FailurePercentageRequestVolume"/> requests in the interval for the failure-percentage check to run. Default 5.</summary>
    public int FailurePercentageMinimumHosts
    {
        get => _failurePercentageMinimumHosts ?? 5;
        set => _failurePercentageMinimumHosts = value;
    }

    /// <summary>Gets or sets the requests an endpoint needs in the interval to take part in the failure-percentage check. Default 50.</summary>
    public int FailurePercentageRequestVolume
    {
        get => _failurePercentageRequestVolume ?? 50;
        set => _failurePercentageRequestVolume = value;
    }

    /// <summary>Copies the settings (and which of them were set).</summary>
    internal OutlierDetectionOptions Clone() => (OutlierDetectionOptions)MemberwiseClone();

    /// <summary>Copies every setting of <paramref name="other"/>, and whether it was set.</summary>
    internal void CopyFrom(OutlierDetectionOptions other)
    {
        _enforcingConsecutiveGatewayFailures = other._enforcingConsecutiveGatewayFailures;
        _enforcingFailurePercentage = other._enforcingFailurePercentage;
        _enabled = other._enabled;
        _interval = other._interval;
        _baseEjectionTime = other._baseEjectionTime;
        _maxEjectionTime = other._maxEjectionTime;
        _maxEjectionPercent = other._maxEjectionPercent;
        _consecutiveServerErrors = other._consecutiveServerErrors;
        _enforcingConsecutiveServerErrors = other._enforcingConsecutiveServerErrors;
        _consecutiveGatewayFailures = other._consecutiveGatewayFailures;
        _enforcingSuccessRate = other._enforcingSuccessRate;
        _successRateMinimumHosts = other._successRateMinimumHosts;
        _successRateRequestVolume = other._successRateRequestVolume;
        _successRateStdevFactor = other._successRateStdevFactor;
        _failurePercentageThreshold = other._failurePercentageThreshold;
        _failurePercentageMinimumHosts = other._failurePercentageMinimumHosts;
        _failurePercentageRequestVolume = other._failurePercentageRequestVolume;
    }

    /// <summary>Takes every setting that <paramref name="overrides"/> had set explicitly, leaving the others.</summary>
    internal void OverrideWith(OutlierDetectionOptions overrides)
    {
        _enforcingConsecutiveGatewayFailures = overrides._enforcingConsecutiveGatewayFailures ?? _enforcingConsecutiveGatewayFailures;
        _enforcingFailurePercentage = overrides._enforcingFailurePercentage ?? _enforcingFailurePercentage;
        _enabled = overrides._enabled ?? _enabled;
        _interval = overrides._interval ?? _interval;
        _baseEjectionTime = overrides._baseEjectionTime ?? _baseEjectionTime;
        _maxEjectionTime = overrides._maxEjectionTime ?? _maxEjectionTime;
        _maxEjectionPercent = overrides._maxEjectionPercent ?? _maxEjectionPercent;
        _consecutiveServerErrors = overrides._consecutiveServerErrors ?? _consecutiveServerErrors;
        _enforcingConsecutiveServerErrors = overrides._enforcingConsecutiveServerErrors ?? _enforcingConsecutiveServerErrors;
        _consecutiveGatewayFailures = overrides._consecutiveGatewayFailures ?? _consecutiveGatewayFailures;
        _enforcingSuccessRate = overrides._enforcingSuccessRate ?? _enforcingSuccessRate;
        _successRateMinimumHosts = overrides._successRateMinimumHosts ?? _successRateMinimumHosts;
        _successRateRequestVolume = overrides._successRateRequestVolume ?? _successRateRequestVolume;
        _successRateStdevFactor = overrides._successRateStdevFactor ?? _successRateStdevFactor;
        _failurePercentageThreshold = overrides._failurePercentageThreshold ?? _failurePercentageThreshold;
        _failurePercentageMinimumHosts = overrides._failurePercentageMinimumHosts ?? _failurePercentageMinimumHosts;
        _failurePercentageRequestVolume = overrides._failurePercentageRequestVolume ?? _failurePercentageRequestVolume;
    }
}
