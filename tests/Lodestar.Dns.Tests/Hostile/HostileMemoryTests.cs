using System.Buffers.Binary;
using System.Net;
using Lodestar.Dns.Resolver.Internal;
using Lodestar.Testing.Dns;
using Xunit.Abstractions;

namespace Lodestar.Dns.Tests.Hostile;

/// <summary>Memory a hostile answer can make the resolver hold, asserted in bytes allocated.</summary>
[Collection(HostileMemoryCollection.Name)]
public sealed class HostileMemoryTests
{
    private readonly ITestOutputHelper _output;

    public HostileMemoryTests(ITestOutputHelper output) => _output = output;

    [Fact]
    public void Parse_MaximalMessageOfPointersToALongName_AllocatesPerRecordNotPerPointer()
    {
        // Arrange: a 65,535-byte message (the TCP maximum) whose question name is 255 bytes of unprintable labels
        // (each byte becomes four characters, \DDD), followed by as many A records as fit, each owned by a two-byte
        // pointer to that name.
        var message = CompressionBomb(out var records);
        DnsMessageReader.Parse(message); // JIT and first-use costs outside the measurement

        // Act
        var before = GC.GetAllocatedBytesForCurrentThread();
        var parsed = DnsMessageReader.Parse(message);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // Assert: every record was read, each for the cost of a record, not of decoding its 1,000-character name again.
        Assert.Equal(records, parsed.Answers.Count);
        Assert.Same(parsed.Answers[0].Name, parsed.Answers[^1].Name);
        _output.WriteLine($"{records:N0} records in a {message.Length:N0}-byte message: {allocated:N0} bytes allocated");
        Assert.True(allocated < records * 512, $"parsing {records:N0} records in a {message.Length:N0}-byte message allocated {allocated:N0} bytes");
    }

    [Fact]
    public async Task QueryAsync_TcpAnswerFollowedByEndlessBytes_ReadsOnlyTheAnnouncedLengthWithBoundedMemory()
    {
        // Arrange: the UDP answer is truncated; over TCP the server announces 65,535 bytes, sends a good answer padded
        // to that length, then keeps sending and never closes.
        await using var server = HostileDnsServer.Start();
        server.UdpFault = HostileDnsFault.Truncated;
        server.TcpFault = HostileDnsFault.Endless;
        var resolver = TestResolvers.Create([server.EndPoint], timeout: TimeSpan.FromSeconds(30));
        await resolver.QueryAsync("web.lodestar.test", DnsRecordType.A, CancellationToken.None); // warm-up

        // Act
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var message = await resolver.QueryAsync("web.lodestar.test", DnsRecordType.A, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        // Assert: the answer came as soon as its 65,535 bytes were in (the connection never closes, so reading on would
        // have timed out), and the exchange held about one maximal message.
        _output.WriteLine($"TCP exchange with a 65,535-byte answer and endless bytes after it: {allocated:N0} bytes allocated");
        Assert.Equal(IPAddress.Parse("127.0.0.2"), Assert.Single(message.Answers).Address);
        Assert.True(allocated < 1024 * 1024, $"the exchange allocated {allocated:N0} bytes");
    }

    [Fact]
    public async Task QueryAsync_UdpAnswerLargerThanAdvertised_RejectedWithinTheAdvertisedBuffer()
    {
        await using var server = HostileDnsServer.Start();
        server.UdpFault = HostileDnsFault.Oversized;
        var resolver = TestResolvers.Create([server.EndPoint], timeout: TimeSpan.FromSeconds(30), payload: 512);

        var error = await Assert.ThrowsAsync<Lodestar.Dns.Resolver.DnsResolutionException>(
            () => resolver.QueryAsync("web.lodestar.test", DnsRecordType.A, CancellationToken.None));

        Assert.Contains("The datagram is larger than the 512 bytes the query allowed.", error.Message, StringComparison.Ordinal);
    }

    private static byte[] CompressionBomb(out int records)
    {
        var message = new byte[ushort.MaxValue];
        BinaryPrimitives.WriteUInt16BigEndian(message, 7);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(2), 0x8180);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(4), 1);
        var offset = 12;
        // 3 labels of 63 bytes and one of 61: 1 + 3 × 64 + 62 = 255 bytes on the wire.
        foreach (var length in new[] { 63, 63, 63, 61 })
        {
            message[offset++] = (byte)length;
            message.AsSpan(offset, length).Fill(1);
            offset += length;
        }

        message[offset++] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(offset), 1);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(offset + 2), 1);
        offset += 4;
        records = 0;
        while (offset + 16 <= message.Length)
        {
            message[offset] = 0xC0;
            message[offset + 1] = 12;
            BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(offset + 2), 1);
            BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(offset + 4), 1);
            BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(offset + 6), 60);
            BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(offset + 10), 4);
            message[offset + 12] = 127;
            message[offset + 15] = (byte)records;
            offset += 16;
            records++;
        }

        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(6), (ushort)records);
        return message;
    }
}

/// <summary>Runs the memory tests alone, so that the process-wide allocation count sees only them.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HostileMemoryCollection
{
    public const string Name = "Hostile memory";
}
