using Lodestar.Grpc.Tests.Protos;

namespace Lodestar.Grpc.Tests.Infrastructure;

/// <summary>
/// Writes a request to one port out and then fails it as SocketsHttpHandler does when the server closes the
/// connection with GOAWAY above the request's stream (HTTP/2 error code <see cref="ErrorCode"/>).
/// </summary>
internal sealed class ClosingHandler : DelegatingHandler
{
    /// <summary>A handler for a client factory's pipeline, which sets the inner handler.</summary>
    public ClosingHandler()
    {
    }

    public ClosingHandler(HttpMessageHandler inner)
        : base(inner)
    {
    }

    private int _closed;

    public int ClosingPort { get; set; } = -1;

    public long ErrorCode { get; init; }

    public int Closed => Volatile.Read(ref _closed);

    /// <summary>
    /// Makes 60 unary calls and one server-streaming call through <paramref name="client"/>, with this handler closing
    /// <paramref name="closingBackend"/>'s connections, and asserts that every call succeeded elsewhere after some were
    /// sent to the closing backend.
    /// </summary>
    public async Task AssertCallsMoveAsync(Echo.EchoClient client, string closingBackend)
    {
        var counts = await GrpcTestHost.CountUnaryAsync(client, 60);
        using var stream = client.Stream(new StreamRequest { Count = 2 }, deadline: DateTime.UtcNow.AddSeconds(10));
        var messages = 0;
        while (await stream.ResponseStream.MoveNext(CancellationToken.None))
        {
            messages++;
        }

        Assert.Equal(60, counts.Values.Sum());
        Assert.False(counts.ContainsKey(closingBackend));
        Assert.True(Closed > 0, "no call was sent to the closing endpoint");
        Assert.Equal(2, messages);
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.RequestUri?.Port == ClosingPort)
        {
            Interlocked.Increment(ref _closed);
            await request.Content!.CopyToAsync(Stream.Null, cancellationToken);
            throw new HttpRequestException(HttpRequestError.HttpProtocolError, $"The HTTP/2 server closed the connection. HTTP/2 error code '{ErrorCode}'.",
                new HttpProtocolException(ErrorCode, "The HTTP/2 server closed the connection.", null));
        }

        return await base.SendAsync(request, cancellationToken);
    }
}
