using System.Buffers.Binary;
using Lodestar.Dns.Resolver.Internal;

namespace Lodestar.Dns.Tests.Resolver;

/// <summary>Builds responses byte by byte, for tests that need packets no real server would send.</summary>
internal static class DnsPackets
{
    /// <summary>Answers a query with one A record (owner compressed to the question), optionally with another ID or question name.</summary>
    public static byte[] AnswerA(byte[] query, byte[] address, uint ttl = 60, ushort? id = null, string? questionName = null)
    {
        var parsed = DnsMessageReader.Parse(query);
        var question = parsed.Questions[0];
        var header = DnsQueryWriter.Write(id ?? parsed.Id, questionName ?? question.Name, question.Type, 0);
        var response = new List<byte>(header);
        response[2] = 0x81; // QR, RD
        response[3] = 0x80; // RA
        response[7] = 1;    // ANCOUNT
        response.AddRange([0xC0, 0x0C, 0, 1, 0, 1]);
        var ttlBytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(ttlBytes, ttl);
        response.AddRange(ttlBytes);
        response.AddRange([0, (byte)address.Length]);
        response.AddRange(address);
        return [.. response];
    }

    /// <summary>A response with every feature the parser reads: compression, CNAME, A, AAAA, SRV, SOA and OPT.</summary>
    public static byte[] Rich()
    {
        var bytes = new List<byte>();
        void U16(int v) { bytes.Add((byte)(v >> 8)); bytes.Add((byte)v); }
        void U32(uint v) { U16((int)(v >> 16)); U16((int)(v & 0xFFFF)); }
        void Name(params string[] labels)
        {
            foreach (var label in labels)
            {
                bytes.Add((byte)label.Length);
                bytes.AddRange(label.Select(c => (byte)c));
            }

            bytes.Add(0);
        }

        U16(0x1234); U16(0x8180); U16(1); U16(4); U16(1); U16(1);
        Name("www", "lodestar", "test"); U16(1); U16(1);                       // question at 12
        U16(0xC00C); U16(5); U16(1); U32(30); U16(4); bytes.AddRange([1, (byte)'a']); U16(0xC010); // CNAME → a.lodestar.test
        U16(0xC000 + 47); U16(1); U16(1); U32(20); U16(4); bytes.AddRange([127, 0, 0, 9]);       // a.lodestar.test A
        U16(0xC00C); U16(28); U16(1); U32(0x80000000); U16(16); bytes.AddRange(new byte[15]); bytes.Add(1); // AAAA, TTL top bit set
        U16(0xC00C); U16(33); U16(1); U32(40); U16(8); U16(1); U16(5); U16(8080); U16(0xC010);          // SRV → lodestar.test
        U16(0xC010); U16(6); U16(1); U32(50); U16(2 + 2 + 20); U16(0xC010); U16(0xC010); U32(1); U32(2); U32(3); U32(4); U32(9); // SOA
        bytes.Add(0); U16(41); U16(1232); U32(0); U16(0);                            // OPT
        return [.. bytes];
    }
}
