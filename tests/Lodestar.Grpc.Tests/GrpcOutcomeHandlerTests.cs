using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
using Lodestar.Grpc.Internal;
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

    [Fact]
    public async Task Send_GracefulCloseAfterRequestSent_UnaryCallGoesToAnotherEndpoint()
    {
        // Arrange: every instance answers; then b0's requests are written out and answered by a graceful close
        // (GOAWAY NO_ERROR above the stream's id), as when an instance stops while a call is being sent to it.
        await using var host = await GrpcTestHost.StartAsync(3);
        var closing = new ClosingHandler(new SocketsHttpHandler { EnableMultipleHttp2Connections = true });
        using var channel = GrpcChannel.ForAddress($"lodestar:///{GrpcTestHost.Service}",
            new GrpcChannelOptions { Credentials = ChannelCredentials.Insecure, HttpHandler = closing }.UseLodestar(host.Services, LodestarGrpcPolicies.RoundRobin));
        var client = new Echo.EchoClient(channel);
        await Eventually.TrueAsync(async () => (await GrpcTestHost.CountUnaryAsync(client, 30)).Count == 3, s_wait, "every instance answers");
        closing.ClosingPort = host.Backends[0].Port;

        // Act and assert: no call fails and none is answered by b0; some were refused there first and moved.
        await closing.AssertCallsMoveAsync(client, "b0");
    }

    [Fact]
    public async Task Send_ConnectionClosedWithError_CallFailsWithoutMoving()
    {
        // Arrange: the connection is closed with INTERNAL_ERROR: the server may have processed the call.
        await using var host = await GrpcTestHost.StartAsync(1);
        var closing = new ClosingHandler(new SocketsHttpHandler { EnableMultipleHttp2Connections = true }) { ErrorCode = 2 };
        using var channel = GrpcChannel.ForAddress($"lodestar:///{GrpcTestHost.Service}",
            new GrpcChannelOptions { Credentials = ChannelCredentials.Insecure, HttpHandler = closing }.UseLodestar(host.Services, LodestarGrpcPolicies.RoundRobin));
        var client = new Echo.EchoClient(channel);
        await GrpcTestHost.CountUnaryAsync(client, 1);
        closing.ClosingPort = host.Backends[0].Port;

        // Act
        var error = await Assert.ThrowsAsync<RpcException>(() => client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10)).ResponseAsync);

        // Assert: sent once, not again.
        Assert.Equal(StatusCode.Internal, error.StatusCode);
        Assert.Equal(1, closing.Closed);
    }

    [Fact]
    public async Task Send_RequestWithoutTracker_PassesInnerTaskThrough()
    {
        // Arrange: a request no Lodestar picker handled carries no tracker.
        var inner = new PendingHandler();
        using var outer = new ForwardingHandler(new GrpcOutcomeHandler(inner));
        using var request = new HttpRequestMessage(HttpMethod.Post, "http://127.0.0.1:1/echo.Echo/Unary");

        // Act
        var sent = outer.Send(request);
        inner.Response.SetResult(new HttpResponseMessage(System.Net.HttpStatusCode.OK));
        using var response = await sent;

        // Assert: the inner handler's own task, not one of the outcome handler's making.
        Assert.Same(inner.Response.Task, sent);
        Assert.Same(await inner.Response.Task, response);
    }

    [Fact]
    public void Rent_CompletedAndOutcomeReported_NextCallReusesTracker()
    {
        // Arrange: a call whose response carried its status (Trailers-Only): the outcome is reported at once.
        var pool = new CallTracker?[4];
        using var first = new HttpRequestMessage(HttpMethod.Post, "http://127.0.0.1:1/echo.Echo/Unary");
        var tracker = CallTracker.Rent(default, new Http.GrpcStatusOptions(), first, pool: pool);
        using var response = TrailersOnly();
        tracker.Observe(response);

        // Act: grpc-dotnet has not completed the tracker yet, then it has.
        using var early = new HttpRequestMessage(HttpMethod.Post, "http://127.0.0.1:1/echo.Echo/Unary");
        var whileHeld = CallTracker.Rent(default, new Http.GrpcStatusOptions(), early, pool: pool);
        tracker.Complete(new global::Grpc.Net.Client.Balancer.CompletionContext());
        using var next = new HttpRequestMessage(HttpMethod.Post, "http://127.0.0.1:1/echo.Echo/Unary");
        var reused = CallTracker.Rent(default, new Http.GrpcStatusOptions(), next, pool: pool);

        // Assert: reused only once both are done, and then it serves the new request only.
        Assert.NotSame(tracker, whileHeld);
        Assert.Same(tracker, reused);
        Assert.True(reused.IsFor(next));
        Assert.False(reused.IsFor(first));
        whileHeld.Complete(new global::Grpc.Net.Client.Balancer.CompletionContext());
        reused.Complete(new global::Grpc.Net.Client.Balancer.CompletionContext());
    }

    [Fact]
    public async Task Send_TrackerReusedByAnotherCall_PassesEarlierRequestThrough()
    {
        // Arrange: an earlier call's request still names a tracker that now serves another call.
        var pool = new CallTracker?[4];
        using var earlier = new HttpRequestMessage(HttpMethod.Post, "http://127.0.0.1:1/echo.Echo/Unary");
        var tracker = CallTracker.Rent(default, new Http.GrpcStatusOptions(), earlier, pool: pool);
        tracker.Complete(new global::Grpc.Net.Client.Balancer.CompletionContext());
        using var current = new HttpRequestMessage(HttpMethod.Post, "http://127.0.0.1:1/echo.Echo/Unary");
        var reused = CallTracker.Rent(default, new Http.GrpcStatusOptions(), current, pool: pool);
        var inner = new PendingHandler();
        using var outer = new ForwardingHandler(new GrpcOutcomeHandler(inner));

        // Act
        var sent = outer.Send(earlier);
        using var response = TrailersOnly();
        inner.Response.SetResult(response);
        await sent;

        // Assert: the earlier request went through untracked; the tracker was left to its current call.
        Assert.Same(tracker, reused);
        Assert.Same(inner.Response.Task, sent);
        Assert.True(reused.IsFor(current));
        reused.Complete(new global::Grpc.Net.Client.Balancer.CompletionContext());
    }

    private static HttpResponseMessage TrailersOnly()
    {
        var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = new ByteArrayContent([]) };
        response.Content.Headers.TryAddWithoutValidation("Content-Type", "application/grpc");
        response.Headers.TryAddWithoutValidation("grpc-status", "0");
        return response;
    }

    /// <summary>Answers every request with one pending task the test completes.</summary>
    private sealed class PendingHandler : HttpMessageHandler
    {
        public TaskCompletionSource<HttpResponseMessage> Response { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) => Response.Task;
    }

    /// <summary>Hands a request to its inner handler directly, as the handler above it in a channel's chain does.</summary>
    private sealed class ForwardingHandler(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        public Task<HttpResponseMessage> Send(HttpRequestMessage request) => SendAsync(request, CancellationToken.None);
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
