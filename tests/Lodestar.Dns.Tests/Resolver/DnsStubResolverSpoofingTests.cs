using System.Net;
using System.Net.Sockets;
using Lodestar.Dns.Resolver.Internal;

namespace Lodestar.Dns.Tests.Resolver;

/// <summary>
/// A scripted UDP server that answers first with forged replies, then with the right one. Only a reply whose ID differs
/// from the query's can be told apart from the server's answer (RFC 5452 §9.1), so only such replies are ignored; a reply
/// with the query's ID that is wrong otherwise is the server's answer and fails the query (see the hostile suite).
/// </summary>
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
            var forged = (ushort)(id + 1);
            await server.SendToAsync(DnsPackets.AnswerA(query, [10, 0, 0, 1], id: forged), client);
            await server.SendToAsync(DnsPackets.AnswerA(query, [10, 0, 0, 2], id: forged, questionName: "evil.lodestar.test"), client);
            await server.SendToAsync(new byte[] { (byte)(forged >> 8), (byte)forged, 3 }, client);
            await server.SendToAsync(DnsPackets.AnswerA(query, [127, 0, 0, 3], ttl: 42), client);
        });
        var resolver = TestResolvers.Create([(IPEndPoint)server.LocalEndPoint!]);

        var result = await resolver.LookupAsync("web.lodestar.test.", DnsRecordType.A, CancellationToken.None);
        await serving.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(IPAddress.Parse("127.0.0.3"), Assert.Single(result.Records).Address);
        Assert.Equal(42u, result.Ttl);
    }
}
