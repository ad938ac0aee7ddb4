using System.Diagnostics;
using System.Net;
using Lodestar.Dns.Resolver;
using Lodestar.Dns.Resolver.Internal;

namespace Lodestar.Dns.Tests.Resolver;

public sealed class DnsMessageReaderTests
{
    [Fact]
    public void Parse_RichResponse_ReadsEveryRecordType()
    {
        var message = DnsMessageReader.Parse(DnsPackets.Rich());

        Assert.True(message.IsResponse);
        Assert.Equal(0x1234, message.Id);
        Assert.Equal(new DnsQuestion("www.lodestar.test", DnsRecordType.A, 1), Assert.Single(message.Questions));
        Assert.Equal("a.lodestar.test", message.Answers[0].Target);
        Assert.Equal("a.lodestar.test", message.Answers[1].Name);
        Assert.Equal(IPAddress.Parse("127.0.0.9"), message.Answers[1].Address);
        Assert.Equal(IPAddress.Parse("::1"), message.Answers[2].Address);
        Assert.Equal(0u, message.Answers[2].Ttl);
        Assert.Equal(new SrvData(1, 5, 8080, "lodestar.test"), message.Answers[3].Srv);
        Assert.Equal(9u, Assert.Single(message.Authorities).Soa!.Value.Minimum);
        Assert.Empty(message.Additionals);
        Assert.Equal(1232, message.EdnsPayloadSize);
    }

    [Fact]
    public void Parse_QueryWrittenByWriter_RoundTrips()
    {
        var query = DnsQueryWriter.Write(77, "_http._tcp.orders.shop.svc.cluster.local.", DnsRecordType.SRV, 1232);

        var message = DnsMessageReader.Parse(query);

        Assert.False(message.IsResponse);
        Assert.Equal(new DnsQuestion("_http._tcp.orders.shop.svc.cluster.local", DnsRecordType.SRV, 1), Assert.Single(message.Questions));
        Assert.Equal(1232, message.EdnsPayloadSize);
    }

    [Fact]
    public void ReadName_PointerToItself_ThrowsFormatError()
    {
        byte[] packet = [.. new byte[12], 0xC0, 12];
        var offset = 12;

        Assert.Throws<DnsFormatException>(() => DnsMessageReader.ReadName(packet, ref offset));
    }

    [Fact]
    public void ReadName_PointerLoopThroughLabels_ThrowsFormatError()
    {
        // "a" then a pointer back to the "a": each step is backwards from the pointer but loops forever.
        byte[] packet = [.. new byte[12], 1, (byte)'a', 0xC0, 12];
        var offset = 12;

        Assert.Throws<DnsFormatException>(() => DnsMessageReader.ReadName(packet, ref offset));
    }

    [Fact]
    public void ReadName_LongerThan255Bytes_ThrowsFormatError()
    {
        var packet = new List<byte>(new byte[12]);
        for (var i = 0; i < 5; i++)
        {
            packet.Add(63);
            packet.AddRange(Enumerable.Repeat((byte)'x', 63));
        }

        packet.Add(0);
        var offset = 12;

        Assert.Throws<DnsFormatException>(() => DnsMessageReader.ReadName([.. packet], ref offset));
    }

    [Fact]
    public void Parse_EveryTruncation_ThrowsOnlyFormatError()
    {
        var rich = DnsPackets.Rich();
        for (var length = 0; length < rich.Length; length++)
        {
            Assert.Throws<DnsFormatException>(() => DnsMessageReader.Parse(rich.AsSpan(0, length)));
        }
    }

    [Fact]
    public void Parse_ARecordWithWrongLength_ThrowsFormatError()
    {
        var rich = DnsPackets.Rich();
        var index = Array.IndexOf(rich, (byte)127) - 1; // RDLENGTH low byte of the A record
        rich[index] = 5;

        Assert.Throws<DnsFormatException>(() => DnsMessageReader.Parse(rich));
    }

    [Fact]
    public void Parse_RandomAndMutatedPackets_OnlyFormatErrorsWithinBounds()
    {
        // Seeded, so a failure reproduces; bounded in count and time.
        var random = new Random(20240605);
        var seeds = new[]
        {
            DnsPackets.Rich(),
            DnsQueryWriter.Write(1, "big.lodestar.test", DnsRecordType.A, 1232),
            DnsPackets.AnswerA(DnsQueryWriter.Write(9, "web.lodestar.test", DnsRecordType.A, 0), [127, 0, 0, 2]),
        };
        var watch = Stopwatch.StartNew();
        int parsed = 0, rejected = 0;
        for (var i = 0; i < 30_000 && watch.Elapsed < TimeSpan.FromSeconds(20); i++)
        {
            byte[] packet;
            if (i % 4 == 0)
            {
                packet = new byte[random.Next(0, 600)];
                random.NextBytes(packet);
            }
            else
            {
                var seed = seeds[random.Next(seeds.Length)];
                packet = (byte[])seed.Clone();
                var mutations = random.Next(1, 8);
                for (var m = 0; m < mutations; m++)
                {
                    switch (random.Next(4))
                    {
                        case 0:
                            packet[random.Next(packet.Length)] = (byte)random.Next(256);
                            break;
                        case 1:
                            // Pointers and lengths are where parsers break: write one anywhere.
                            var at = random.Next(packet.Length - 1);
                            packet[at] = (byte)(0xC0 | random.Next(4));
                            packet[at + 1] = (byte)random.Next(256);
                            break;
                        case 2:
                            packet = packet[..random.Next(packet.Length)];
                            if (packet.Length < 2)
                            {
                                packet = (byte[])seed.Clone();
                            }

                            break;
                        default:
                            if (packet.Length >= 12)
                            {
                                // Section counts far beyond what the bytes hold.
                                packet[random.Next(4, 12)] = 0xFF;
                            }

                            break;
                    }
                }
            }

            DnsMessage? message = null;
            try
            {
                message = DnsMessageReader.Parse(packet);
                parsed++;
            }
            catch (DnsFormatException)
            {
                rejected++;
            }

            // Names shared through the name cache read exactly as names decoded one by one.
            DnsMessage? reference = null;
            try
            {
                reference = DnsMessageReader.Parse(packet, cacheNames: false);
            }
            catch (DnsFormatException)
            {
            }

            Assert.Equal(reference is null, message is null);
            if (message is not null)
            {
                Assert.Equal(Names(reference!), Names(message));
            }
        }

        Assert.True(parsed + rejected >= 1000, $"only {parsed + rejected} packets in the time bound");
        Assert.True(rejected > 0);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60));
    }

    private static List<string?> Names(DnsMessage message)
        => [.. message.Questions.Select(static q => q.Name),
            .. message.Answers.Concat(message.Authorities).Concat(message.Additionals)
                .SelectMany(static r => new[] { r.Name, r.Target, r.Srv?.Target, r.Soa?.PrimaryServer, r.Soa?.Mailbox })];
}
