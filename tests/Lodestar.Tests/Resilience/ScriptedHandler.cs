using System.Collections.Concurrent;

namespace Lodestar.Tests.Resilience;

/// <summary>A primary handler whose answers a test scripts per call: no network at all.</summary>
internal sealed class ScriptedHandler(Func<ScriptedHandler.Call, Task<HttpResponseMessage>> respond) : HttpMessageHandler
{
    private int _count;

    public ConcurrentQueue<Call> Calls { get; } = new();

    public int Count => Volatile.Read(ref _count);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var body = request.Content is null ? null : await request.Content.ReadAsStringAsync(cancellationToken);
        var call = new Call(Interlocked.Increment(ref _count), request.RequestUri!.Authority, request.Method, body, cancellationToken);
        Calls.Enqueue(call);
        return await respond(call);
    }

    public static Task<HttpResponseMessage> Status(int status) => Task.FromResult(new HttpResponseMessage((System.Net.HttpStatusCode)status));

    /// <summary>Waits until the attempt is cancelled, then reports the cancellation as the transport does.</summary>
    public static async Task<HttpResponseMessage> Hang(Call call)
    {
        await Task.Delay(Timeout.Infinite, call.Token);
        throw new InvalidOperationException("unreachable");
    }

    public sealed record Call(int Number, string Authority, HttpMethod Method, string? Body, CancellationToken Token);
}
