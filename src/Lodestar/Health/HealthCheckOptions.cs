namespace Lodestar.Health;

/// <summary>
/// Active health checks for one service: every endpoint is probed on one timer per service, by default with an HTTP
/// GET on <see cref="Path"/> (or over another <see cref="Protocol"/>, such as gRPC's health service); endpoints
/// failing <see cref="UnhealthyThreshold"/> checks in a row take no traffic until they pass
/// <see cref="HealthyThreshold"/> in a row. Off by default.
/// </summary>
/// <remarks>
/// Configured per service (<c>Lodestar:Services:&lt;service&gt;:HealthChecks</c>, or
/// <c>Configure&lt;HealthCheckOptions&gt;("service", ...)</c>) and overridden per client
/// (<c>Lodestar:Clients:&lt;client&gt;:HealthChecks</c>, or <c>LodestarClientOptions.HealthChecks</c>): a property the client sets
/// wins, any other comes from the service, then the default. Clients whose resulting settings are equal share one
/// health stage for the service; clients whose settings differ each get their own, as two Envoy clusters over the same
/// endpoints would.
/// Endpoints not checked yet are healthy unless <see cref="HoldNewEndpointsUntilHealthy"/> is on.
/// </remarks>
public sealed class HealthCheckOptions
{
    private bool? _enabled;
    private bool? _holdNewEndpointsUntilHealthy;
    private string? _path;
    private string? _protocol;
    private string? _grpcServiceName;
    private TimeSpan? _interval;
    private TimeSpan? _intervalJitter;
    private TimeSpan? _timeout;
    private int? _unhealthyThreshold;
    private int? _healthyThreshold;
    private int? _minHealthyStatus;
    private int? _maxHealthyStatus;

    /// <summary>Gets or sets whether active checks run. Default <see langword="false"/>.</summary>
    public bool Enabled
    {
        get => _enabled ?? false;
        set => _enabled = value;
    }

    /// <summary>
    /// Gets or sets how each endpoint is probed: <see cref="HealthCheckProtocols.Http"/> (the default) or
    /// <see cref="HealthCheckProtocols.Grpc"/> (Lodestar.Grpc), or the protocol of a registered
    /// <see cref="HealthProbeFactory"/>; case does not matter. Validated at startup: a protocol nobody registered fails
    /// naming the client or service.
    /// </summary>
    /// <remarks>Envoy's <c>health_checks</c> choose the same way between <c>http_health_check</c> and <c>grpc_health_check</c>.</remarks>
    public string Protocol
    {
        get => _protocol ?? HealthCheckProtocols.Http;
        set => _protocol = value;
    }

    /// <summary>
    /// Gets or sets, for <see cref="HealthCheckProtocols.Grpc"/>, the service name sent in each
    /// <c>grpc.health.v1.HealthCheckRequest</c>; the empty string (the default) asks about the server as a whole, as
    /// Envoy's <c>grpc_health_check.service_name</c> does.
    /// </summary>
    public string GrpcServiceName
    {
        get => _grpcServiceName ?? string.Empty;
        set => _grpcServiceName = value;
    }

    /// <summary>Gets or sets the path (and query) requested on each endpoint by <see cref="HealthCheckProtocols.Http"/> checks. Default <c>/readyz</c>.</summary>
    public string Path
    {
        get => _path ?? "/readyz";
        set => _path = value;
    }

    /// <summary>Gets or sets the time between check rounds. Default 5 seconds; range 10 ms to 1 hour.</summary>
    public TimeSpan Interval
    {
        get => _interval ?? TimeSpan.FromSeconds(5);
        set => _interval = value;
    }

    /// <summary>
    /// Gets or sets the largest random delay added to each interval, so that many clients do not probe in step.
    /// Default 1 second; range 0 to 1 hour.
    /// </summary>
    public TimeSpan IntervalJitter
    {
        get => _intervalJitter ?? TimeSpan.FromSeconds(1);
        set => _intervalJitter = value;
    }

    /// <summary>Gets or sets how long one check may take before it counts as failed. Default 2 seconds; range 10 ms to 5 minutes.</summary>
    public TimeSpan Timeout
    {
        get => _timeout ?? TimeSpan.FromSeconds(2);
        set => _timeout = value;
    }

    /// <summary>Gets or sets how many failed checks in a row make an endpoint unhealthy. Default 3; range 1 to 100.</summary>
    public int UnhealthyThreshold
    {
        get => _unhealthyThreshold ?? 3;
        set => _unhealthyThreshold = value;
    }

    /// <summary>Gets or sets how many passed checks in a row make an unhealthy endpoint healthy again. Default 2; range 1 to 100.</summary>
    public int HealthyThreshold
    {
        get => _healthyThreshold ?? 2;
        set => _healthyThreshold = value;
    }

    /// <summary>Gets or sets the lowest status code that passes. Default 200.</summary>
    public int MinHealthyStatus
    {
        get => _minHealthyStatus ?? 200;
        set => _minHealthyStatus = value;
    }

    /// <summary>Gets or sets the highest status code that passes. Default 399.</summary>
    public int MaxHealthyStatus
    {
        get => _maxHealthyStatus ?? 399;
        set => _maxHealthyStatus = value;
    }

    /// <summary>
    /// Gets or sets whether an endpoint seen for the first time takes no traffic until its first check passes (Envoy's
    /// <c>ignore_new_hosts_until_first_hc</c>). Default <see langword="false"/>.
    /// </summary>
    public bool HoldNewEndpointsUntilHealthy
    {
        get => _holdNewEndpointsUntilHealthy ?? false;
        set => _holdNewEndpointsUntilHealthy = value;
    }

    /// <summary>Copies the settings (and which of them were set).</summary>
    internal HealthCheckOptions Clone() => (HealthCheckOptions)MemberwiseClone();

    /// <summary>Copies every setting of <paramref name="other"/>, and whether it was set.</summary>
    internal void CopyFrom(HealthCheckOptions other)
    {
        _enabled = other._enabled;
        _holdNewEndpointsUntilHealthy = other._holdNewEndpointsUntilHealthy;
        _path = other._path;
        _protocol = other._protocol;
        _grpcServiceName = other._grpcServiceName;
        _interval = other._interval;
        _intervalJitter = other._intervalJitter;
        _timeout = other._timeout;
        _unhealthyThreshold = other._unhealthyThreshold;
        _healthyThreshold = other._healthyThreshold;
        _minHealthyStatus = other._minHealthyStatus;
        _maxHealthyStatus = other._maxHealthyStatus;
    }

    /// <summary>Takes every setting that <paramref name="overrides"/> had set explicitly, leaving the others.</summary>
    internal void OverrideWith(HealthCheckOptions overrides)
    {
        _enabled = overrides._enabled ?? _enabled;
        _holdNewEndpointsUntilHealthy = overrides._holdNewEndpointsUntilHealthy ?? _holdNewEndpointsUntilHealthy;
        _path = overrides._path ?? _path;
        _protocol = overrides._protocol ?? _protocol;
        _grpcServiceName = overrides._grpcServiceName ?? _grpcServiceName;
        _interval = overrides._interval ?? _interval;
        _intervalJitter = overrides._intervalJitter ?? _intervalJitter;
        _timeout = overrides._timeout ?? _timeout;
        _unhealthyThreshold = overrides._unhealthyThreshold ?? _unhealthyThreshold;
        _healthyThreshold = overrides._healthyThreshold ?? _healthyThreshold;
        _minHealthyStatus = overrides._minHealthyStatus ?? _minHealthyStatus;
        _maxHealthyStatus = overrides._maxHealthyStatus ?? _maxHealthyStatus;
    }
}
