using System.Net;
using System.Net.Sockets;
using Lodestar.Dns.Resolver.Internal;

namespace Lodestar.Dns.Tests.Resolver;

/// <summary>A scripted UDP server that answers first with forged replies, then with the right one.</summary>
public sealed class DnsStubResolverSpoofingTests
{
    [Fact]
    public async Task LookupAsync_ForgedRepliesFirst_IgnoresThemAndAcceptsMatchingAnswer()
    {
        using var server = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        server.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var serving = Task.Run(async () =>
        {
            var buffer = new byte[2048];
            var received = await server.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0));
            var query = buffer[..received.ReceivedBytes];
            var id = DnsMessageReader.Parse(query).Id;
            var client = received.RemoteEndPoint;
            await server.SendToAsync(DnsPackets.AnswerA(query, [10, 0, 0, 1], id: (ushort)(id + 1)), client);
            await server.SendToAsync(DnsPackets.AnswerA(query, [10, 0, 0, 2], questionName: "evil.lodestar.test"), client);
            await server.SendToAsync(new byte[] { 1, 2, 3 }, client);
            await server.SendToAsync(DnsPackets.AnswerA(query, [127, 0, 0, 3], ttl: 42), client);
        });
        var resolver = TestResolvers.Create([(IPEndPoint)server.LocalEndPoint!]);

        var result = await resolver.LookupAsync("web.lodestar.test.", DnsRecordType.A, CancellationToken.None);
        await serving.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(IPAddress.Parse("127.0.0.3"), Assert.Single(result.Records).Address);
        Assert.Equal(42u, result.Ttl);
    }
}
