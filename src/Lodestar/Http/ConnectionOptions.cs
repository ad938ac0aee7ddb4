namespace Lodestar.Http;

/// <summary>
/// Per-service connection settings of the <see cref="HttpClient"/> path (Envoy's cluster <c>connect_timeout</c> and
/// circuit-breaker <c>max_connections</c>), applied where Lodestar clients open their connections. Off by default.
/// </summary>
/// <remarks>
/// <para>
/// Configured per service (<c>Lodestar:Services:&lt;service&gt;:Connections</c>, or
/// <c>Configure&lt;ConnectionOptions&gt;("service", ...)</c>); a source that supplies per-service settings (an xDS
/// cluster) configures them there too. They take effect on the next connection a client opens.
/// </para>
/// <para>
/// They apply to clients whose <see cref="System.Net.Http.SocketsHttpHandler.ConnectCallback"/> is Lodestar's, which is
/// the case when <see cref="LodestarOptions.RetireRemovedConnections"/> is on (the default) and no other callback was
/// set. A connection is attributed to the services whose current endpoint sets hold its address; an address in no set
/// has no limits.
/// </para>
/// </remarks>
public sealed class ConnectionOptions
{
    /// <summary>The configuration section under a service's <c>Lodestar:Services:&lt;service&gt;</c>.</summary>
    public const string SectionName = "Connections";

    /// <summary>
    /// Gets or sets how long a connection to an endpoint of the service may take before it is abandoned, or
    /// <see langword="null"/> (default) for the client's <see cref="LodestarClientOptions.ConnectTimeout"/> alone. The
    /// shorter of the two applies. An address held by several services uses the shortest timeout among them. The
    /// request fails as a connect failure, which the retry stage moves to another endpoint. Range 100 ms to 2 minutes.
    /// </summary>
    public TimeSpan? ConnectTimeout { get; set; }

    /// <summary>
    /// Gets or sets the most connections open to the service's endpoints (all its addresses together) per client
    /// handler, or <see langword="null"/> (default) for no cap. When the cap is reached, a new connection waits for one
    /// of the service's connections to close, at most until the connect timeout or the request's cancellation; meanwhile
    /// the request is served by whichever pooled connection frees first. An address held by several services counts
    /// against each. Range 1 to 1,000,000.
    /// </summary>
    public int? MaxConnections { get; set; }
}
