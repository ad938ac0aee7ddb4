using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Lodestar.Dns.Resolver.Internal;

/// <summary>
/// Parses DNS messages (RFC 1035 §4) from untrusted bytes. Every read is bounds-checked; the only exception it throws
/// is <see cref="DnsFormatException"/>.
/// </summary>
internal static class DnsMessageReader
{
    private const int HeaderLength = 12;
    private const int MaxNameWireLength = 255;

    public static DnsMessage Parse(ReadOnlySpan<byte> message)
    {
        if (message.Length < HeaderLength)
        {
            throw new DnsFormatException($"The DNS message is {message.Length} bytes, shorter than its 12-byte header.");
        }

        var id = BinaryPrimitives.ReadUInt16BigEndian(message);
        var flags = BinaryPrimitives.ReadUInt16BigEndian(message[2..]);
        int questionCount = BinaryPrimitives.ReadUInt16BigEndian(message[4..]);
        int answerCount = BinaryPrimitives.ReadUInt16BigEndian(message[6..]);
        int authorityCount = BinaryPrimitives.ReadUInt16BigEndian(message[8..]);
        int additionalCount = BinaryPrimitives.ReadUInt16BigEndian(message[10..]);

        var offset = HeaderLength;
        // A question takes at least 5 bytes and a record at least 11, so counts beyond what the bytes can hold are
        // rejected by the bounds checks below; capacities are capped so a forged count cannot make us allocate.
        var questions = new List<DnsQuestion>(Math.Min(questionCount, (message.Length - offset) / 5));
        for (var i = 0; i < questionCount; i++)
        {
            var name = ReadName(message, ref offset);
            var type = (DnsRecordType)ReadUInt16(message, ref offset);
            var @class = ReadUInt16(message, ref offset);
            questions.Add(new DnsQuestion(name, type, @class));
        }

        var answers = ReadSection(message, ref offset, answerCount, allowOpt: false, out _);
        var authorities = ReadSection(message, ref offset, authorityCount, allowOpt: false, out _);
        var additionals = ReadSection(message, ref offset, additionalCount, allowOpt: true, out var opt);

        var responseCode = (DnsResponseCode)(flags & 0xF);
        ushort payloadSize = 0;
        if (opt is { } o)
        {
            // RFC 6891 §6.1.3: the OPT TTL carries the upper 8 bits of the 12-bit response code.
            responseCode = (DnsResponseCode)((int)((o.Ttl >> 24) << 4) | (flags & 0xF));
            payloadSize = o.Class;
        }

        return new DnsMessage
        {
            Id = id,
            Flags = flags,
            ResponseCode = responseCode,
            Questions = questions,
            Answers = answers,
            Authorities = authorities,
            Additionals = additionals,
            EdnsPayloadSize = payloadSize,
        };
    }

    private static List<DnsRecord> ReadSection(ReadOnlySpan<byte> message, ref int offset, int count, bool allowOpt, out (ushort Class, uint Ttl)? opt)
    {
        opt = null;
        var records = new List<DnsRecord>(Math.Min(count, (message.Length - offset) / 11));
        for (var i = 0; i < count; i++)
        {
            var name = ReadName(message, ref offset);
            var type = (DnsRecordType)ReadUInt16(message, ref offset);
            var @class = ReadUInt16(message, ref offset);
            var rawTtl = ReadUInt32(message, ref offset);
            int length = ReadUInt16(message, ref offset);
            if (length > message.Length - offset)
            {
                throw new DnsFormatException($"Record '{name}' claims {length} bytes of data but only {message.Length - offset} remain.");
            }

            var dataStart = offset;
            var dataEnd = offset + length;
            if (type == DnsRecordType.OPT)
            {
                // RFC 6891 §6.1.1: one OPT record, owned by the root, in the additional section only.
                if (!allowOpt || opt is not null || name.Length != 0)
                {
                    throw new DnsFormatException("The DNS message has a misplaced or repeated OPT record.");
                }

                opt = (@class, rawTtl);
                offset = dataEnd;
                continue;
            }

            // RFC 2181 §8: a TTL with the most significant bit set is treated as zero.
            var ttl = rawTtl > int.MaxValue ? 0u : rawTtl;
            var record = type switch
            {
                DnsRecordType.A => ReadAddress(message, name, type, @class, ttl, dataStart, length, 4),
                DnsRecordType.AAAA => ReadAddress(message, name, type, @class, ttl, dataStart, length, 16),
                DnsRecordType.CNAME => new DnsRecord(name, type, @class, ttl) { Target = ReadNameWithin(message, ref offset, dataEnd) },
                DnsRecordType.SRV => ReadSrv(message, name, @class, ttl, ref offset, dataEnd),
                DnsRecordType.SOA => ReadSoa(message, name, @class, ttl, ref offset, dataEnd),
                _ => new DnsRecord(name, type, @class, ttl),
            };

            if (offset != dataStart && offset != dataEnd)
            {
                throw new DnsFormatException($"The {type} record '{name}' has {length} bytes of data, which do not match its contents.");
            }

            offset = dataEnd;
            records.Add(record);
        }

        return records;
    }

    private static DnsRecord ReadAddress(ReadOnlySpan<byte> message, string name, DnsRecordType type, ushort @class, uint ttl, int start, int length, int expected)
    {
        if (length != expected)
        {
            throw new DnsFormatException($"The {type} record '{name}' has {length} bytes of data; expected {expected}.");
        }

        return new DnsRecord(name, type, @class, ttl) { Address = new IPAddress(message.Slice(start, length)) };
    }

    private static DnsRecord ReadSrv(ReadOnlySpan<byte> message, string name, ushort @class, uint ttl, ref int offset, int end)
    {
        var priority = ReadUInt16(message, ref offset);
        var weight = ReadUInt16(message, ref offset);
        var port = ReadUInt16(message, ref offset);
        var target = ReadNameWithin(message, ref offset, end);
        return new DnsRecord(name, DnsRecordType.SRV, @class, ttl) { Srv = new SrvData(priority, weight, port, target) };
    }

    private static DnsRecord ReadSoa(ReadOnlySpan<byte> message, string name, ushort @class, uint ttl, ref int offset, int end)
    {
        var primary = ReadNameWithin(message, ref offset, end);
        var mailbox = ReadNameWithin(message, ref offset, end);
        if (end - offset != 20)
        {
            throw new DnsFormatException($"The SOA record '{name}' has {end - offset} bytes after its names; expected 20.");
        }

        var soa = new SoaData(primary, mailbox, ReadUInt32(message, ref offset), ReadUInt32(message, ref offset),
            ReadUInt32(message, ref offset), ReadUInt32(message, ref offset), ReadUInt32(message, ref offset));
        return new DnsRecord(name, DnsRecordType.SOA, @class, ttl) { Soa = soa };
    }

    private static string ReadNameWithin(ReadOnlySpan<byte> message, ref int offset, int end)
    {
        var name = ReadName(message, ref offset);
        if (offset > end)
        {
            throw new DnsFormatException("A name in record data runs past the end of the record.");
        }

        return name;
    }

    /// <summary>
    /// Reads a possibly compressed name (RFC 1035 §4.1.4). A pointer must point before the label sequence that holds
    /// it, so every jump goes strictly backwards and a loop is impossible; the 255-byte name limit bounds the rest.
    /// </summary>
    internal static string ReadName(ReadOnlySpan<byte> message, ref int offset)
    {
        var builder = new StringBuilder();
        var position = offset;
        var chunkStart = offset;
        var jumped = false;
        var wireLength = 1;
        while (true)
        {
            if (position >= message.Length)
            {
                throw new DnsFormatException("A name runs past the end of the DNS message.");
            }

            int length = message[position];
            switch (length & 0xC0)
            {
                case 0xC0:
                    if (position + 1 >= message.Length)
                    {
                        throw new DnsFormatException("A compression pointer runs past the end of the DNS message.");
                    }

                    var target = ((length & 0x3F) << 8) | message[position + 1];
                    if (target >= chunkStart)
                    {
                        throw new DnsFormatException("A compression pointer does not point backwards.");
                    }

                    if (!jumped)
                    {
                        offset = position + 2;
                        jumped = true;
                    }

                    position = target;
                    chunkStart = target;
                    continue;
                case 0x00:
                    break;
                default:
                    throw new DnsFormatException($"A name uses the unsupported label type 0x{length & 0xC0:X2}.");
            }

            if (length == 0)
            {
                if (!jumped)
                {
                    offset = position + 1;
                }

                return builder.ToString();
            }

            wireLength += length + 1;
            if (wireLength > MaxNameWireLength)
            {
                throw new DnsFormatException("A name is longer than 255 bytes.");
            }

            if (position + 1 + length > message.Length)
            {
                throw new DnsFormatException("A label runs past the end of the DNS message.");
            }

            if (builder.Length > 0)
            {
                builder.Append('.');
            }

            foreach (var b in message.Slice(position + 1, length))
            {
                if (b is > 0x20 and < 0x7F and not (byte)'.' and not (byte)'\\')
                {
                    builder.Append((char)b);
                }
                else
                {
                    // Presentation format (RFC 4343 §2.1): anything unprintable or special as \DDD.
                    builder.Append('\\').Append(((int)b).ToString("D3", System.Globalization.CultureInfo.InvariantCulture));
                }
            }

            position += 1 + length;
        }
    }

    private static ushort ReadUInt16(ReadOnlySpan<byte> message, ref int offset)
    {
        if (offset > message.Length - 2)
        {
            throw new DnsFormatException("The DNS message ends in the middle of a field.");
        }

        var value = BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
        offset += 2;
        return value;
    }

    private static uint ReadUInt32(ReadOnlySpan<byte> message, ref int offset)
    {
        if (offset > message.Length - 4)
        {
            throw new DnsFormatException("The DNS message ends in the middle of a field.");
        }

        var value = BinaryPrimitives.ReadUInt32BigEndian(message[offset..]);
        offset += 4;
        return value;
    }
}
