using Lodestar.Endpoints;

namespace Lodestar.Health;

/// <summary>
/// Probes one endpoint for active health checks: the part of a check that speaks a protocol (HTTP GET, gRPC
/// <c>grpc.health.v1.Health/Check</c>, ...). One probe serves one health stage (normally one service) and lives as long
/// as it; the interval, jitter, timeout, thresholds and <see cref="HealthCheckOptions.HoldNewEndpointsUntilHealthy"/>
/// are applied around it, the same for every probe.
/// </summary>
/// <remarks>
/// <para>
/// A <see cref="HealthProbeFactory"/> whose <see cref="HealthProbeFactory.Protocol"/> matches
/// <see cref="HealthCheckOptions.Protocol"/> creates the probe, as Envoy's <c>health_checks</c> choose between
/// <c>http_health_check</c> and <c>grpc_health_check</c>.
/// </para>
/// <para>
/// <see cref="ProbeAsync"/> may be called concurrently for different endpoints, never for one endpoint while a probe of
/// it is in flight. A probe may keep per-endpoint resources (a connection, a channel) across calls; it is told through
/// <see cref="ReleaseEndpoint"/> when an endpoint leaves the service, and disposed with the stage.
/// </para>
/// </remarks>
public abstract class HealthProbe : IDisposable
{
    /// <summary>Probes <paramref name="endpoint"/> once.</summary>
    /// <param name="endpoint">The endpoint to probe.</param>
    /// <param name="cancellationToken">Cancelled when <see cref="HealthCheckOptions.Timeout"/> elapses or the checks stop.</param>
    /// <returns>Whether the endpoint passed, and if not, why.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="endpoint"/> is <see langword="null"/>.</exception>
    /// <remarks>An exception thrown by the probe counts as a failed check, with the exception's message as the reason.</remarks>
    public ValueTask<HealthProbeResult> ProbeAsync(DiscoveredEndpoint endpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return ProbeCoreAsync(endpoint, cancellationToken);
    }

    /// <summary>Releases what the probe keeps for <paramref name="endpoint"/>: the endpoint left the service. Idempotent.</summary>
    /// <param name="endpoint">The endpoint that left.</param>
    /// <exception cref="ArgumentNullException"><paramref name="endpoint"/> is <see langword="null"/>.</exception>
    public void ReleaseEndpoint(DiscoveredEndpoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        OnEndpointReleased(endpoint);
    }

    /// <summary>Releases everything the probe keeps.</summary>
    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Probes <paramref name="endpoint"/> once; called by <see cref="ProbeAsync"/> after it checked the argument.</summary>
    /// <param name="endpoint">The endpoint to probe; not <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancelled when the check's timeout elapses or the checks stop.</param>
    /// <returns>Whether the endpoint passed, and if not, why.</returns>
    protected abstract ValueTask<HealthProbeResult> ProbeCoreAsync(DiscoveredEndpoint endpoint, CancellationToken cancellationToken);

    /// <summary>Releases what the probe keeps for <paramref name="endpoint"/>; the default keeps nothing.</summary>
    /// <param name="endpoint">The endpoint that left; not <see langword="null"/>.</param>
    protected virtual void OnEndpointReleased(DiscoveredEndpoint endpoint)
    {
    }

    /// <summary>Releases what the probe keeps; the default keeps nothing.</summary>
    /// <param name="disposing"><see langword="true"/> when called from <see cref="Dispose()"/>.</param>
    protected virtual void Dispose(bool disposing)
    {
    }
}
