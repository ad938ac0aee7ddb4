using System.Net;

namespace Lodestar.Dns.Resolver.Internal;

/// <summary>Record types the resolver asks for or reads (RFC 1035 §3.2.2, RFC 3596, RFC 2782, RFC 6891).</summary>
internal enum DnsRecordType : ushort
{
    A = 1,
    NS = 2,
    CNAME = 5,
    SOA = 6,
    TXT = 16,
    AAAA = 28,
    SRV = 33,
    OPT = 41,
}

/// <summary>Response codes (RFC 1035 §4.1.1; extended codes from the OPT record, RFC 6891 §6.1.3).</summary>
internal enum DnsResponseCode
{
    NoError = 0,
    FormatError = 1,
    ServerFailure = 2,
    NameError = 3,
    NotImplemented = 4,
    Refused = 5,
}

/// <summary>SRV record data (RFC 2782).</summary>
internal readonly record struct SrvData(ushort Priority, ushort Weight, ushort Port, string Target);

/// <summary>SOA record data (RFC 1035 §3.3.13); <see cref="Minimum"/> is the negative-caching TTL (RFC 2308 §4).</summary>
internal readonly record struct SoaData(string PrimaryServer, string Mailbox, uint Serial, uint Refresh, uint Retry, uint Expire, uint Minimum);

/// <summary>One resource record. Only the data of the types the resolver uses is decoded; other types keep none.</summary>
internal sealed class DnsRecord
{
    public DnsRecord(string name, DnsRecordType type, ushort @class, uint ttl)
    {
        Name = name;
        Type = type;
        Class = @class;
        Ttl = ttl;
    }

    /// <summary>Gets the owner name, without the trailing dot.</summary>
    public string Name { get; }

    public DnsRecordType Type { get; }

    public ushort Class { get; }

    /// <summary>Gets the TTL in seconds; values with the top bit set are read as 0 (RFC 2181 §8).</summary>
    public uint Ttl { get; }

    /// <summary>Gets the address of an A or AAAA record.</summary>
    public IPAddress? Address { get; init; }

    /// <summary>Gets the target of a CNAME record.</summary>
    public string? Target { get; init; }

    public SrvData? Srv { get; init; }

    public SoaData? Soa { get; init; }

    public override string ToString() => $"{Name} {Ttl} {Type} {(object?)Address ?? (object?)Target ?? (object?)Srv ?? Soa}";
}
