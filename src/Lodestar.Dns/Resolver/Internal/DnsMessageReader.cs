using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Lodestar.Dns.Resolver.Internal;

/// <summary>
/// Parses DNS messages (RFC 1035 §4) from untrusted bytes. Every read is bounds-checked; the only exception it throws
/// is <see cref="DnsFormatException"/>, whose message says what is wrong and at which byte.
/// </summary>
/// <remarks>
/// Memory is bounded by the message: list capacities are capped by the bytes left, and a name found at a position once
/// is shared by every pointer to it, so a message allocates a small multiple of its own size however it is built.
/// </remarks>
internal static class DnsMessageReader
{
    private const int HeaderLength = 12;
    private const int MaxNameWireLength = 255;

    /// <summary>A name has at most 127 labels; a longer pointer chain can only be hostile.</summary>
    private const int MaxPointers = 127;

    public static DnsMessage Parse(ReadOnlySpan<byte> message) => Parse(message, cacheNames: true);

    /// <summary>Parses a message; <paramref name="cacheNames"/> off decodes every name anew (a reference for tests).</summary>
    internal static DnsMessage Parse(ReadOnlySpan<byte> message, bool cacheNames)
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
        var names = cacheNames ? new Dictionary<int, CachedName>() : null;
        // A question takes at least 5 bytes and a record at least 11, so counts beyond what the bytes can hold are
        // rejected by the bounds checks below; capacities are capped so a forged count cannot make us allocate.
        var questions = new List<DnsQuestion>(Math.Min(questionCount, (message.Length - offset) / 5));
        for (var i = 0; i < questionCount; i++)
        {
            var name = ReadName(message, ref offset, names);
            var type = (DnsRecordType)ReadUInt16(message, ref offset);
            var @class = ReadUInt16(message, ref offset);
            questions.Add(new DnsQuestion(name, type, @class));
        }

        var answers = ReadSection(message, ref offset, answerCount, "answer", names, out _);
        var authorities = ReadSection(message, ref offset, authorityCount, "authority", names, out _);
        var additionals = ReadSection(message, ref offset, additionalCount, "additional", names, out var opt);

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

    private static List<DnsRecord> ReadSection(ReadOnlySpan<byte> message, ref int offset, int count, string section, Dictionary<int, CachedName>? names,
        out (ushort Class, uint Ttl)? opt)
    {
        opt = null;
        var records = new List<DnsRecord>(Math.Min(count, (message.Length - offset) / 11));
        for (var i = 0; i < count; i++)
        {
            var recordStart = offset;
            var name = ReadName(message, ref offset, names);
            var type = (DnsRecordType)ReadUInt16(message, ref offset);
            var @class = ReadUInt16(message, ref offset);
            var rawTtl = ReadUInt32(message, ref offset);
            int length = ReadUInt16(message, ref offset);
            if (length > message.Length - offset)
            {
                throw new DnsFormatException(
                    $"The {type} record '{name}' at byte {recordStart} ({section} {i + 1} of {count}) claims {length} bytes of data, but only {message.Length - offset} remain in the {message.Length}-byte message.");
            }

            var dataStart = offset;
            var dataEnd = offset + length;
            if (type == DnsRecordType.OPT)
            {
                // RFC 6891 §6.1.1: one OPT record, owned by the root, in the additional section only.
                if (section != "additional" || opt is not null || name.Length != 0)
                {
                    throw new DnsFormatException($"The DNS message has a misplaced or repeated OPT record at byte {recordStart} ({section} section).");
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
                DnsRecordType.CNAME => new DnsRecord(name, type, @class, ttl) { Target = ReadNameWithin(message, ref offset, dataEnd, names) },
                DnsRecordType.SRV => ReadSrv(message, name, @class, ttl, ref offset, dataEnd, names),
                DnsRecordType.SOA => ReadSoa(message, name, @class, ttl, ref offset, dataEnd, names),
                _ => new DnsRecord(name, type, @class, ttl),
            };

            if (offset != dataStart && offset != dataEnd)
            {
                throw new DnsFormatException($"The {type} record '{name}' at byte {recordStart} has {length} bytes of data, which do not match its contents.");
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

    private static DnsRecord ReadSrv(ReadOnlySpan<byte> message, string name, ushort @class, uint ttl, ref int offset, int end, Dictionary<int, CachedName>? names)
    {
        var priority = ReadUInt16(message, ref offset);
        var weight = ReadUInt16(message, ref offset);
        var port = ReadUInt16(message, ref offset);
        var target = ReadNameWithin(message, ref offset, end, names);
        return new DnsRecord(name, DnsRecordType.SRV, @class, ttl) { Srv = new SrvData(priority, weight, port, target) };
    }

    private static DnsRecord ReadSoa(ReadOnlySpan<byte> message, string name, ushort @class, uint ttl, ref int offset, int end, Dictionary<int, CachedName>? names)
    {
        var primary = ReadNameWithin(message, ref offset, end, names);
        var mailbox = ReadNameWithin(message, ref offset, end, names);
        if (end - offset != 20)
        {
            throw new DnsFormatException($"The SOA record '{name}' has {end - offset} bytes after its names; expected 20.");
        }

        var soa = new SoaData(primary, mailbox, ReadUInt32(message, ref offset), ReadUInt32(message, ref offset),
            ReadUInt32(message, ref offset), ReadUInt32(message, ref offset), ReadUInt32(message, ref offset));
        return new DnsRecord(name, DnsRecordType.SOA, @class, ttl) { Soa = soa };
    }

    private static string ReadNameWithin(ReadOnlySpan<byte> message, ref int offset, int end, Dictionary<int, CachedName>? names)
    {
        var start = offset;
        var name = ReadName(message, ref offset, names);
        if (offset > end)
        {
            throw new DnsFormatException($"The name '{name}' at byte {start} in record data runs past the end of its record at byte {end}.");
        }

        return name;
    }

    /// <summary>Reads a possibly compressed name (RFC 1035 §4.1.4) outside a message parse, without the name cache.</summary>
    internal static string ReadName(ReadOnlySpan<byte> message, ref int offset) => ReadName(message, ref offset, cache: null);

    /// <summary>
    /// Reads a possibly compressed name (RFC 1035 §4.1.4). A pointer must point before the label sequence that holds
    /// it, so every jump goes strictly backwards and a loop is impossible; the 255-byte name limit bounds the rest.
    /// </summary>
    /// <remarks>
    /// <paramref name="cache"/> remembers the name found at each position already read. Compression lets thousands of
    /// two-byte pointers name the same 255-byte name; decoding each one again would turn a 64 KiB message into megabytes
    /// of strings, whereas with the cache every record pointing at a known name shares its one string.
    /// </remarks>
    private static string ReadName(ReadOnlySpan<byte> message, ref int offset, Dictionary<int, CachedName>? cache)
    {
        var start = offset;
        StringBuilder? builder = null;
        // Positions jumped to, with how much of the name (characters, wire bytes) came before each: the name from
        // there on is cached once the whole name is known.
        List<(int Position, int Characters, int WireLength)>? jumps = null;
        var position = offset;
        var chunkStart = offset;
        var jumped = false;
        var wireLength = 1;
        var pointers = 0;
        while (true)
        {
            if (position >= message.Length)
            {
                throw new DnsFormatException($"A name that starts at byte {start} runs past the end of the {message.Length}-byte DNS message.");
            }

            int length = message[position];
            switch (length & 0xC0)
            {
                case 0xC0:
                    if (position + 1 >= message.Length)
                    {
                        throw new DnsFormatException($"A compression pointer at byte {position} runs past the end of the {message.Length}-byte DNS message.");
                    }

                    var target = ((length & 0x3F) << 8) | message[position + 1];
                    if (target >= chunkStart)
                    {
                        throw new DnsFormatException(
                            $"A compression pointer at byte {position} points to byte {target}, not back before its own labels at byte {chunkStart}: a pointer loop.");
                    }

                    if (++pointers > MaxPointers)
                    {
                        throw new DnsFormatException($"A name that starts at byte {start} follows more than {MaxPointers} compression pointers.");
                    }

                    if (!jumped)
                    {
                        offset = position + 2;
                        jumped = true;
                    }

                    if (cache is not null && cache.TryGetValue(target, out var known))
                    {
                        var total = wireLength - 1 + known.WireLength;
                        if (total > MaxNameWireLength)
                        {
                            throw new DnsFormatException($"The name that starts at byte {start} is longer than 255 bytes.");
                        }

                        var name = builder is null ? known.Name
                            : known.Name.Length == 0 ? builder.ToString()
                            : builder.Append('.').Append(known.Name).ToString();
                        Remember(cache, start, jumps, name, total);
                        return name;
                    }

                    (jumps ??= []).Add((target, builder?.Length ?? 0, wireLength));
                    position = target;
                    chunkStart = target;
                    continue;
                case 0x00:
                    break;
                default:
                    throw new DnsFormatException($"A name at byte {position} uses the unsupported label type 0x{length & 0xC0:X2}.");
            }

            if (length == 0)
            {
                if (!jumped)
                {
                    offset = position + 1;
                }

                var name = builder?.ToString() ?? string.Empty;
                Remember(cache, start, jumps, name, wireLength);
                return name;
            }

            wireLength += length + 1;
            if (wireLength > MaxNameWireLength)
            {
                throw new DnsFormatException($"The name that starts at byte {start} is longer than 255 bytes.");
            }

            if (position + 1 + length > message.Length)
            {
                throw new DnsFormatException($"A {length}-byte label at byte {position} runs past the end of the {message.Length}-byte DNS message.");
            }

            builder ??= new StringBuilder();
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

    private static void Remember(Dictionary<int, CachedName>? cache, int start, List<(int Position, int Characters, int WireLength)>? jumps, string name, int wireLength)
    {
        if (cache is null)
        {
            return;
        }

        cache.TryAdd(start, new CachedName(name, wireLength));
        if (jumps is null)
        {
            return;
        }

        foreach (var (position, characters, before) in jumps)
        {
            // The name from a jump target on: what follows the characters read before the jump (and its dot).
            var suffix = characters == 0 ? name : characters >= name.Length ? string.Empty : name[(characters + 1)..];
            cache.TryAdd(position, new CachedName(suffix, wireLength - before + 1));
        }
    }

    private static ushort ReadUInt16(ReadOnlySpan<byte> message, ref int offset)
    {
        if (offset > message.Length - 2)
        {
            throw new DnsFormatException($"The {message.Length}-byte DNS message ends in the middle of a field at byte {offset}.");
        }

        var value = BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
        offset += 2;
        return value;
    }

    private static uint ReadUInt32(ReadOnlySpan<byte> message, ref int offset)
    {
        if (offset > message.Length - 4)
        {
            throw new DnsFormatException($"The {message.Length}-byte DNS message ends in the middle of a field at byte {offset}.");
        }

        var value = BinaryPrimitives.ReadUInt32BigEndian(message[offset..]);
        offset += 4;
        return value;
    }

    /// <summary>A name already read at some position, with its length on the wire (root label included).</summary>
    private readonly record struct CachedName(string Name, int WireLength);
}
