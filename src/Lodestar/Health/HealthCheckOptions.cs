namespace Lodestar.Health;

/// <summary>
/// Active HTTP health checks for one service: every endpoint is probed with a GET on <see cref="Path"/> on one timer
/// per service; endpoints failing <see cref="UnhealthyThreshold"/> checks in a row take no traffic until they pass
/// <see cref="HealthyThreshold"/> in a row. Off by default.
/// </summary>
/// <remarks>
/// Checks are per service: when several clients share a service and balancing policy, the settings of the first client
/// to send a request apply. Endpoints not checked yet are healthy unless <see cref="HoldNewEndpointsUntilHealthy"/> is on.
/// </remarks>
public sealed class HealthCheckOptions
{
    /// <summary>Gets or sets whether active checks run. Default <see langword="false"/>.</summary>
    public bool Enabled { get; set; }

    /// <summary>Gets or sets the path (and query) requested on each endpoint. Default <c>/readyz</c>.</summary>
    public string Path { get; set; } = "/readyz";

    /// <summary>Gets or sets the time between check rounds. Default 5 seconds; range 10 ms to 1 hour.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Gets or sets the largest random delay added to each interval, so that many clients do not probe in step.
    /// Default 1 second; range 0 to 1 hour.
    /// </summary>
    public TimeSpan IntervalJitter { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Gets or sets how long one check may take before it counts as failed. Default 2 seconds; range 10 ms to 5 minutes.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Gets or sets how many failed checks in a row make an endpoint unhealthy. Default 3; range 1 to 100.</summary>
    public int UnhealthyThreshold { get; set; } = 3;

    /// <summary>Gets or sets how many passed checks in a row make an unhealthy endpoint healthy again. Default 2; range 1 to 100.</summary>
    public int HealthyThreshold { get; set; } = 2;

    /// <summary>Gets or sets the lowest status code that passes. Default 200.</summary>
    public int MinHealthyStatus { get; set; } = 200;

    /// <summary>Gets or sets the highest status code that passes. Default 399.</summary>
    public int MaxHealthyStatus { get; set; } = 399;

    /// <summary>
    /// Gets or sets whether an endpoint seen for the first time takes no traffic until its first check passes (Envoy's
    /// <c>ignore_new_hosts_until_first_hc</c>). Default <see langword="false"/>.
    /// </summary>
    public bool HoldNewEndpointsUntilHealthy { get; set; }
}
