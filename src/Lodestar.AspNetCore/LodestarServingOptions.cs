namespace Lodestar.AspNetCore;

/// <summary>
/// Options of the serving side: the health endpoints mapped by <c>MapLodestarHealth</c> and the graceful drain on
/// shutdown.
/// </summary>
public sealed class LodestarServingOptions
{
    /// <summary>The configuration section these options bind from: <c>Lodestar:Serving</c>.</summary>
    public const string SectionName = "Lodestar:Serving";

    /// <summary>
    /// Gets or sets the liveness path. Liveness only says the process answers HTTP: it never calls a dependency, so a
    /// failing database cannot make an orchestrator restart every instance at once. Default <c>/healthz</c>.
    /// </summary>
    public string LivenessPath { get; set; } = "/healthz";

    /// <summary>
    /// Gets or sets the readiness path. Readiness runs the registered health checks tagged
    /// <see cref="ReadinessTag"/> and answers 503 as soon as the instance drains. Default <c>/readyz</c>.
    /// </summary>
    public string ReadinessPath { get; set; } = "/readyz";

    /// <summary>
    /// Gets or sets the tag that selects the health checks readiness runs, or <see langword="null"/> to run every
    /// registered check. Default <c>ready</c>.
    /// </summary>
    public string? ReadinessTag { get; set; } = "ready";

    /// <summary>
    /// Gets or sets the deadline of each readiness check; a check still running then counts as unhealthy. A check's
    /// own <c>HealthCheckRegistration.Timeout</c> applies when it is shorter. Default 2 seconds; 10 ms to 1 minute.
    /// </summary>
    public TimeSpan CheckTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Gets or sets how long a readiness result is reused. Probes arriving meanwhile (a probe storm, several
    /// orchestrators and load balancers) cost nothing, and concurrent probes share one evaluation. Default 1 second;
    /// 0 (evaluate every probe, still sharing concurrent ones) to 1 minute.
    /// </summary>
    public TimeSpan CacheDuration { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Gets or sets how long the instance keeps serving after shutdown begins, with readiness already 503 and its
    /// registrations removed, before the server stops accepting connections. This is the window kube-proxy, load
    /// balancers and Lodestar clients need to stop sending. It is part of the host's <c>HostOptions.ShutdownTimeout</c>,
    /// which must also leave room for in-flight requests; Kubernetes' <c>terminationGracePeriodSeconds</c> must exceed
    /// both. Default 5 seconds; 0 to 5 minutes.
    /// </summary>
    public TimeSpan DrainDelay { get; set; } = TimeSpan.FromSeconds(5);
}
