using System.Net;
using System.Net.Http.Json;
using Lodestar.Resilience;
using Lodestar.Resilience.Internal;

namespace Lodestar.Tests.Resilience;

public sealed class RequestBodyTests
{
    [Fact]
    public async Task PrepareAsync_JsonContent_ReplayableWithoutBuffering()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "http://orders/") { Content = JsonContent.Create(new { Id = 42 }) };

        var replayable = await RequestBody.PrepareAsync(request, mayRetry: false, limit: 0, CancellationToken.None);

        Assert.True(replayable);
    }

    [Fact]
    public async Task PrepareAsync_StreamedContentWhoseTypeNameStartsWithJson_NotTakenForJsonContent()
    {
        // A type-name check would take this unsized stream for replayable; it can be read only once.
        using var request = new HttpRequestMessage(HttpMethod.Post, "http://orders/") { Content = new JsonStreamContent(new MemoryStream([1, 2, 3])) };

        var replayable = await RequestBody.PrepareAsync(request, mayRetry: true, limit: 1024, CancellationToken.None);

        Assert.False(replayable);
    }

    [Fact]
    public async Task PrepareAsync_MultipartWithAStreamPart_NotReplayable_WithInMemoryPartsReplayable()
    {
        using var streamed = new HttpRequestMessage(HttpMethod.Post, "http://orders/")
        {
            Content = new MultipartFormDataContent { new StringContent("a"), new StreamContent(new MemoryStream([1])) },
        };
        using var inMemory = new HttpRequestMessage(HttpMethod.Post, "http://orders/")
        {
            Content = new MultipartFormDataContent { new StringContent("a"), new ByteArrayContent([1, 2]) },
        };

        Assert.False(await RequestBody.PrepareAsync(streamed, mayRetry: false, limit: 0, CancellationToken.None));
        Assert.True(await RequestBody.PrepareAsync(inMemory, mayRetry: false, limit: 0, CancellationToken.None));
    }

    [Fact]
    public async Task Retry_JsonBodyOnOptedInPost_SentAgainWithTheSameBody()
    {
        var handler = new ScriptedHandler(call => ScriptedHandler.Status(call.Number == 1 ? 503 : 200));
        await using var host = ResilienceTestHost.Create(o => o.Retry.BackoffBase = TimeSpan.FromMilliseconds(1), primaryHandler: handler);
        host.SetEndpoints("127.0.0.1:9001", "127.0.0.1:9002");
        using var request = new HttpRequestMessage(HttpMethod.Post, "http://orders/x") { Content = JsonContent.Create(new { Id = 42 }) };
        request.Options.Set(LodestarRequestOptions.AllowRetries, true);

        using var response = await host.CreateClient().SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, handler.Count);
        Assert.All(handler.Calls, c => Assert.Equal("{\"id\":42}", c.Body));
    }

    private sealed class JsonStreamContent(Stream stream) : StreamContent(stream)
    {
        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
