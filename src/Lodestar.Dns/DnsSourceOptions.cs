using System.ComponentModel;
using Lodestar.Discovery;

namespace Lodestar.Dns;

/// <summary>
/// Options of the DNS endpoint source, bound from <c>Lodestar:Dns</c>. Unset resolver settings come from
/// <see cref="ResolvConfPath"/>, so a Kubernetes pod's name servers, search list and <c>ndots:5</c> apply unchanged.
/// </summary>
public sealed class DnsSourceOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Lodestar:Dns";

    /// <summary>
    /// Gets the name servers to ask, in order, as <c>ip</c> or <c>ip:port</c> (<c>[v6]:port</c>); empty (default) uses
    /// the <c>nameserver</c> lines of <see cref="ResolvConfPath"/>, and 127.0.0.1:53 when it has none.
    /// </summary>
    public IList<string> Servers { get; } = [];

    /// <summary>Gets or sets the search domains, or <see langword="null"/> (default) for those of <see cref="ResolvConfPath"/>.</summary>
    public IList<string>? SearchDomains { get; set; }

    /// <summary>
    /// Gets or sets how many dots a name needs before it is tried as an absolute name ahead of the search list, or
    /// <see langword="null"/> (default) for resolv.conf's value (1 when unset; Kubernetes pods have 5). Range 0 to 15.
    /// </summary>
    public int? Ndots { get; set; }

    /// <summary>
    /// Gets or sets the timeout of one attempt against one server, or <see langword="null"/> (default) for resolv.conf's
    /// value (5 s when unset). Range 50 ms to 30 s.
    /// </summary>
    public TimeSpan? Timeout { get; set; }

    /// <summary>
    /// Gets or sets how many rounds over all servers a query makes, or <see langword="null"/> (default) for
    /// resolv.conf's value (2 when unset). Range 1 to 5.
    /// </summary>
    public int? Attempts { get; set; }

    /// <summary>Gets or sets the resolver configuration file. Default <c>/etc/resolv.conf</c>; a missing file means glibc's defaults.</summary>
    public string ResolvConfPath { get; set; } = "/etc/resolv.conf";

    /// <summary>
    /// Gets or sets the EDNS0 UDP payload size advertised to servers (RFC 6891), so answers up to this size need no TCP
    /// retry; 0 sends plain 512-byte queries. Default 1232, the size DNS Flag Day 2020 recommends to avoid IP
    /// fragmentation. Range 0 or 512 to 4096.
    /// </summary>
    public int UdpPayloadSize { get; set; } = 1232;

    /// <summary>
    /// Gets or sets the port given to addresses of a plain host name (A/AAAA records carry none), unless
    /// <see cref="Ports"/> or the service name (<c>name:port</c>) says otherwise. Default 80.
    /// </summary>
    public int DefaultPort { get; set; } = 80;

    /// <summary>Gets the port per service for plain host names, for example <c>orders.shop.svc.cluster.local</c> → 8080.</summary>
    public IDictionary<string, int> Ports { get; } = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Gets the SRV name to query per service, for example <c>orders</c> →
    /// <c>_http._tcp.orders.shop.svc.cluster.local</c>. A service name that already has the <c>_service._proto.name</c>
    /// form is always looked up as SRV.
    /// </summary>
    public IDictionary<string, string> SrvNames { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Gets or sets a port name that turns every plain service name into an SRV lookup of
    /// <c>_{SrvPortName}._tcp.{service}</c>: the record Kubernetes publishes for each named port of a service, so
    /// <c>orders.shop.svc.cluster.local</c> with <c>http</c> yields every ready pod with its port. Default
    /// <see langword="null"/> (A/AAAA lookups).
    /// </summary>
    public string? SrvPortName { get; set; }

    /// <summary>
    /// Gets or sets the shortest time between two refreshes of a service, however small the record TTL (a TTL of 0
    /// would otherwise mean a query per request). Default 1 s; range 100 ms to 1 hour.
    /// </summary>
    public TimeSpan MinTtl { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Gets or sets the longest time between two refreshes, however large the record TTL, so a change behind a long
    /// TTL still shows within this time. Default 5 minutes; at least <see cref="MinTtl"/>, at most 1 day.
    /// </summary>
    public TimeSpan MaxTtl { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Gets or sets how long a negative answer (NXDOMAIN or no records) is kept when the server sent no SOA record to
    /// say so (RFC 2308 §5); with an SOA its TTL and MINIMUM decide. Clamped to <see cref="MinTtl"/>..<see cref="MaxTtl"/>.
    /// Default 30 s.
    /// </summary>
    public TimeSpan NegativeTtl { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Gets the delays between failed resolutions, bound from <c>Lodestar:Dns:Backoff</c>: capped exponential backoff
    /// with full jitter that starts over after <see cref="BackoffOptions.ResetAfter"/> without a failure. The last good
    /// set stays in force meanwhile.
    /// </summary>
    /// <remarks>
    /// The defaults are client-go's (800 ms, 30 s, 2 minutes), as for every Lodestar source. DNS has no measured reason to
    /// differ: a resolution that fails has already used the resolver's own retries (<see cref="Attempts"/> rounds over
    /// every server, each within <see cref="Timeout"/>), so the backoff only spaces out whole resolutions.
    /// </remarks>
    public BackoffOptions Backoff { get; } = new();

    /// <summary>
    /// Gets or sets the first retry delay after a failed refresh. Obsolete: use <see cref="BackoffOptions.InitialDelay"/>
    /// of <see cref="Backoff"/>, which this property reads and writes. It still binds from <c>Lodestar:Dns:RetryDelay</c>
    /// for one release; <c>Lodestar:Dns:Backoff:InitialDelay</c> wins when both are set.
    /// </summary>
    [Obsolete("Use Backoff.InitialDelay. RetryDelay will be removed in the next release.")]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public TimeSpan RetryDelay
    {
        get => Backoff.InitialDelay;
        set => Backoff.InitialDelay = value;
    }

    /// <summary>
    /// Gets or sets the longest retry delay after failed refreshes. Obsolete: use <see cref="BackoffOptions.MaxDelay"/> of
    /// <see cref="Backoff"/>, which this property reads and writes. It still binds from <c>Lodestar:Dns:MaxRetryDelay</c>
    /// for one release; <c>Lodestar:Dns:Backoff:MaxDelay</c> wins when both are set.
    /// </summary>
    [Obsolete("Use Backoff.MaxDelay. MaxRetryDelay will be removed in the next release.")]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public TimeSpan MaxRetryDelay
    {
        get => Backoff.MaxDelay;
        set => Backoff.MaxDelay = value;
    }
}
