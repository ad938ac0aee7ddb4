using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
using Lodestar.Grpc.Tests.Infrastructure;
using Lodestar.Grpc.Tests.Protos;
using Lodestar.Testing;

namespace Lodestar.Grpc.Tests;

public sealed class GrpcOutcomeHandlerTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(LodestarGrpcPolicies.RoundRobin)]
    [InlineData(LodestarGrpcPolicies.LeastRequest)]
    public async Task Send_ConnectionRefusedWhileSubchannelLooksReady_CallGoesToAnotherEndpoint(string balancer)
    {
        // Arrange: every subchannel is ready; then new connections to b0 are refused below the outcome handler, as when
        // an instance has gone and its subchannel has not noticed yet.
        await using var host = await GrpcTestHost.StartAsync(3);
        var refusing = new RefusingHandler(new SocketsHttpHandler { EnableMultipleHttp2Connections = true });
        using var channel = GrpcChannel.ForAddress($"lodestar:///{GrpcTestHost.Service}",
            new GrpcChannelOptions { Credentials = ChannelCredentials.Insecure, HttpHandler = refusing }.UseLodestar(host.Services, balancer));
        var client = new Echo.EchoClient(channel);
        await Eventually.TrueAsync(async () => (await GrpcTestHost.CountUnaryAsync(client, 30)).Count == 3, s_wait, "every instance answers");
        var refused = host.Backends[0];
        refusing.RefusedPort = refused.Port;
        var before = refused.Calls;

        // Act
        var counts = await GrpcTestHost.CountUnaryAsync(client, 60);

        // Assert: no call failed, b0 got none, and some were refused there first and moved.
        Assert.Equal(60, counts.Values.Sum());
        Assert.Equal(before, refused.Calls);
        Assert.False(counts.ContainsKey(refused.Name));
        Assert.True(refusing.Refused > 0, "no call was sent to the refusing endpoint");
    }

    [Fact]
    public async Task Send_ConnectionRefusedEverywhere_FailsOnceEveryEndpointWasTried()
    {
        // Arrange: every new connection is refused.
        await using var host = await GrpcTestHost.StartAsync(2);
        var refusing = new RefusingHandler(new SocketsHttpHandler { EnableMultipleHttp2Connections = true });
        using var channel = GrpcChannel.ForAddress($"lodestar:///{GrpcTestHost.Service}",
            new GrpcChannelOptions { Credentials = ChannelCredentials.Insecure, HttpHandler = refusing }.UseLodestar(host.Services, LodestarGrpcPolicies.RoundRobin));
        var client = new Echo.EchoClient(channel);
        await Eventually.TrueAsync(async () => (await GrpcTestHost.CountUnaryAsync(client, 10)).Count == 2, s_wait, "every instance answers");
        refusing.RefuseAll = true;

        // Act
        var error = await Assert.ThrowsAsync<RpcException>(() => client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10)).ResponseAsync);

        // Assert: the call went to each endpoint once, then failed as UNAVAILABLE.
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal(2, refusing.Refused);
    }

    /// <summary>Refuses requests to one port (or all) as a refused connection would, before anything is sent.</summary>
    private sealed class RefusingHandler(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        private int _refused;

        public int RefusedPort { get; set; } = -1;

        public bool RefuseAll { get; set; }

        public int Refused => Volatile.Read(ref _refused);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (RefuseAll || request.RequestUri?.Port == RefusedPort)
            {
                Interlocked.Increment(ref _refused);
                throw new HttpRequestException(HttpRequestError.ConnectionError, $"Connection refused ({request.RequestUri?.Authority})",
                    new SocketException((int)SocketError.ConnectionRefused));
            }

            return base.SendAsync(request, cancellationToken);
        }
    }
}
