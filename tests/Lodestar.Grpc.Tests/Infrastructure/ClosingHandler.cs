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
