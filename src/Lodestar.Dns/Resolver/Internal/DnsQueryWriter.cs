using System.Buffers.Binary;

namespace Lodestar.Dns.Resolver.Internal;

/// <summary>Writes one-question queries (RFC 1035 §4.1) with recursion desired and, optionally, an EDNS0 OPT record.</summary>
internal static class DnsQueryWriter
{
    /// <summary>Builds a query for <paramref name="name"/> (a host name, with or without the trailing dot).</summary>
    /// <param name="id">The query ID.</param>
    /// <param name="name">The absolute name to ask about.</param>
    /// <param name="type">The record type.</param>
    /// <param name="ednsPayloadSize">UDP payload size to advertise in an OPT record (RFC 6891 §6.2.3), or 0 for plain DNS.</param>
    /// <exception cref="ArgumentException">The name is not a valid host name.</exception>
    public static byte[] Write(ushort id, string name, DnsRecordType type, ushort ednsPayloadSize)
    {
        var labels = SplitLabels(name);
        var nameLength = 1;
        foreach (var label in labels)
        {
            nameLength += label.Length + 1;
        }

        var length = 12 + nameLength + 4 + (ednsPayloadSize > 0 ? 11 : 0);
        var buffer = new byte[length];
        var span = buffer.AsSpan();
        BinaryPrimitives.WriteUInt16BigEndian(span, id);
        BinaryPrimitives.WriteUInt16BigEndian(span[2..], 0x0100); // QUERY, RD
        BinaryPrimitives.WriteUInt16BigEndian(span[4..], 1);
        BinaryPrimitives.WriteUInt16BigEndian(span[10..], (ushort)(ednsPayloadSize > 0 ? 1 : 0));
        var offset = 12;
        foreach (var label in labels)
        {
            span[offset++] = (byte)label.Length;
            foreach (var c in label)
            {
                span[offset++] = (byte)c;
            }
        }

        span[offset++] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(span[offset..], (ushort)type);
        BinaryPrimitives.WriteUInt16BigEndian(span[(offset + 2)..], 1); // IN
        offset += 4;
        if (ednsPayloadSize > 0)
        {
            // OPT: root owner, type 41, class = payload size, TTL = extended RCODE 0, version 0, no flags; no options.
            span[offset] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(span[(offset + 1)..], (ushort)DnsRecordType.OPT);
            BinaryPrimitives.WriteUInt16BigEndian(span[(offset + 3)..], ednsPayloadSize);
        }

        return buffer;
    }

    /// <summary>Returns whether <paramref name="name"/> can be sent as a query name.</summary>
    public static bool IsValidName(string name)
    {
        try
        {
            _ = SplitLabels(name);
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static string[] SplitLabels(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.EndsWith('.'))
        {
            name = name[..^1];
        }

        if (name.Length == 0)
        {
            return [];
        }

        var labels = name.Split('.');
        var wire = 1;
        foreach (var label in labels)
        {
            if (label.Length is 0 or > 63)
            {
                throw new ArgumentException($"'{name}' has an empty label or one longer than 63 characters.", nameof(name));
            }

            foreach (var c in label)
            {
                // Host names and SRV owner names: letters, digits, hyphen, underscore (RFC 2782 labels start with '_').
                if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
                {
                    throw new ArgumentException($"'{name}' contains '{c}', which is not allowed in a host name.", nameof(name));
                }
            }

            wire += label.Length + 1;
        }

        if (wire > 255)
        {
            throw new ArgumentException($"'{name}' is longer than 255 bytes on the wire.", nameof(name));
        }

        return labels;
    }
}
