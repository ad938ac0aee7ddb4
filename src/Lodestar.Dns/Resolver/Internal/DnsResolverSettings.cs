using System.Net;

namespace Lodestar.Dns.Resolver.Internal;

/// <summary>The effective resolver configuration: resolv.conf merged with options.</summary>
internal sealed class DnsResolverSettings
{
    public required IReadOnlyList<IPEndPoint> Servers { get; init; }

    public IReadOnlyList<string> SearchDomains { get; init; } = [];

    public int Ndots { get; init; } = ResolvConf.DefaultNdots;

    /// <summary>Gets the timeout of one attempt against one server (UDP wait, or TCP connect plus exchange).</summary>
    public TimeSpan Timeout { get; init; } = ResolvConf.DefaultTimeout;

    /// <summary>Gets how many rounds over all servers a query makes before it fails.</summary>
    public int Attempts { get; init; } = ResolvConf.DefaultAttempts;

    /// <summary>Gets the EDNS0 UDP payload size to advertise, or 0 to send plain RFC 1035 queries (512-byte answers).</summary>
    public ushort UdpPayloadSize { get; init; } = 1232;
}

internal enum DnsLookupStatus
{
    Success,

    /// <summary>The name exists but has no record of the type (NOERROR with an empty answer, RFC 2308 §2.2).</summary>
    NoData,

    /// <summary>The name does not exist (NXDOMAIN, RFC 2308 §2.1).</summary>
    NameError,
}

/// <summary>The outcome of a lookup after the search list and CNAME chasing.</summary>
internal sealed class DnsLookupResult
{
    /// <summary>Gets the absolute name that answered (the last name of a CNAME chain), without the trailing dot.</summary>
    public required string Name { get; init; }

    public required DnsLookupStatus Status { get; init; }

    /// <summary>Gets the records of the asked type owned by <see cref="Name"/>; empty unless <see cref="Status"/> is success.</summary>
    public IReadOnlyList<DnsRecord> Records { get; init; } = [];

    /// <summary>Gets the additional section of the final answer (SRV servers usually send the targets' addresses there).</summary>
    public IReadOnlyList<DnsRecord> Additionals { get; init; } = [];

    /// <summary>
    /// Gets how long the result may be cached, in seconds: the smallest TTL of the records and CNAMEs used, or for a
    /// negative result the smaller of the SOA record's TTL and MINIMUM (RFC 2308 §5); <see langword="null"/> for a
    /// negative answer that carried no SOA.
    /// </summary>
    public uint? Ttl { get; init; }
}
