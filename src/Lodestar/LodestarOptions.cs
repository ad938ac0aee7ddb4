using System.ComponentModel.DataAnnotations;

namespace Lodestar;

/// <summary>Process-wide Lodestar options, bound from the <c>Lodestar</c> configuration section.</summary>
public sealed class LodestarOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Lodestar";

    /// <summary>
    /// Gets or sets how long the first caller for a service waits for its first endpoint snapshot before failing with an
    /// <see cref="Discovery.EndpointResolutionException"/>. Default 10 seconds; 100 ms to 10 minutes.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.1", "00:10:00")]
    public TimeSpan ResolutionTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Gets or sets the source used when a client names none, or <see langword="null"/> (default) to ask the registered
    /// sources in order and use the first that accepts the service.
    /// </summary>
    public string? DefaultSource { get; set; }

    /// <summary>Gets or sets the balancing policy used when a client names none. Default <c>round-robin</c>.</summary>
    [Required]
    public string DefaultPolicy { get; set; } = LoadBalancing.LoadBalancingPolicies.RoundRobin;

    /// <summary>
    /// Gets or sets the panic threshold: when fewer than this fraction of a service's endpoints are healthy, requests
    /// are balanced over all of them rather than overloading the few (Envoy's semantics). Default 0.5; 0 turns panic
    /// mode off; range 0 to 1.
    /// </summary>
    [Range(0.0, 1.0)]
    public double PanicThreshold { get; set; } = 0.5;

    /// <summary>
    /// Gets or sets whether pooled connections to an address that left every service's endpoint set are closed once
    /// idle, rather than when <see cref="System.Net.Http.SocketsHttpHandler.PooledConnectionIdleTimeout"/> or
    /// <see cref="System.Net.Http.SocketsHttpHandler.PooledConnectionLifetime"/> ends them. Requests in flight on them
    /// finish first. Applies to every source and to <see cref="System.Net.Http.IHttpClientFactory"/> clients with
    /// <c>AddLodestar</c> whose <see cref="System.Net.Http.SocketsHttpHandler"/> has no <c>ConnectCallback</c> of its
    /// own. Default <see langword="true"/>.
    /// </summary>
    public bool RetireRemovedConnections { get; set; } = true;

    /// <summary>
    /// Gets or sets how long a connection to a removed address must have moved no bytes, with no response awaited on
    /// it, before it counts as idle and is closed; counted from when the address left at the earliest. Default 2 s;
    /// range 0 to 5 minutes.
    /// </summary>
    public TimeSpan RetireQuietPeriod { get; set; } = TimeSpan.FromSeconds(2);
}
