namespace Lodestar.Diagnostics;

/// <summary>
/// A read-only view of every service this process calls through Lodestar: each source's status, the health and load of
/// every endpoint, and recent events. Registered by <c>AddLodestar</c>; the admin API, the admin page and
/// <c>lodestar top</c> read it.
/// </summary>
/// <remarks>
/// Reading never locks or slows the request path: an inspection reads the same immutable snapshots pickers read and
/// the endpoints' counters with volatile reads. Events are recorded where endpoint sets, ejections and breaker
/// transitions already happen, never per pick.
/// </remarks>
public interface ILodestarInspector
{
    /// <summary>Takes an immutable snapshot of every service a client of this process has called.</summary>
    /// <param name="serviceName">Only this service (case-insensitive), or <see langword="null"/> for all.</param>
    /// <returns>The snapshot; its strings carry no configured secret (error messages are redacted).</returns>
    LodestarInspection Inspect(string? serviceName = null);
}
