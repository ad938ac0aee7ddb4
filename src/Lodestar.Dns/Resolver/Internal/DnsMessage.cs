namespace Lodestar.Dns.Resolver.Internal;

/// <summary>A parsed DNS message (RFC 1035 §4.1). Immutable once read.</summary>
internal sealed class DnsMessage
{
    public required ushort Id { get; init; }

    public required ushort Flags { get; init; }

    public bool IsResponse => (Flags & 0x8000) != 0;

    public int Opcode => (Flags >> 11) & 0xF;

    public bool IsAuthoritative => (Flags & 0x0400) != 0;

    public bool IsTruncated => (Flags & 0x0200) != 0;

    /// <summary>Gets the response code, including the upper bits from an OPT record when present.</summary>
    public required DnsResponseCode ResponseCode { get; init; }

    public required IReadOnlyList<DnsQuestion> Questions { get; init; }

    public required IReadOnlyList<DnsRecord> Answers { get; init; }

    public required IReadOnlyList<DnsRecord> Authorities { get; init; }

    /// <summary>Gets the additional records, without the OPT pseudo-record.</summary>
    public required IReadOnlyList<DnsRecord> Additionals { get; init; }

    /// <summary>Gets the UDP payload size the sender advertised in EDNS0, or 0 when it sent no OPT record.</summary>
    public ushort EdnsPayloadSize { get; init; }
}

/// <summary>A question: name, type and class.</summary>
internal readonly record struct DnsQuestion(string Name, DnsRecordType Type, ushort Class);
