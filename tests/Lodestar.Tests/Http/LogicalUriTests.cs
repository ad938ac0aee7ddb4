using Lodestar.Endpoints;
using Lodestar.Http.Internal;
using Lodestar.LoadBalancing;

namespace Lodestar.Tests.Http;

public sealed class LogicalUriTests
{
    [Fact]
    public void Rewrite_SamePathToSameEndpointAgain_ReturnsThePhysicalUriBuiltBefore()
    {
        // Arrange
        var state = new EndpointState(DiscoveredEndpoint.Create("127.0.0.1", 9001), 0);

        // Act
        var first = LogicalUri.Rewrite(new Uri("http://orders/items?page=2"), state);
        var second = LogicalUri.Rewrite(new Uri("http://orders/items?page=2"), state);

        // Assert
        Assert.Equal("http://127.0.0.1:9001/items?page=2", first.OriginalString);
        Assert.Same(first, second);
    }

    [Theory]
    [InlineData("http://orders/items?page=3", "http://127.0.0.1:9001/items?page=3")]
    [InlineData("http://orders/other", "http://127.0.0.1:9001/other")]
    [InlineData("https+http://orders/items?page=2", "https://127.0.0.1:9001/items?page=2")]
    public void Rewrite_PathQueryOrSchemeDiffersFromLastAttempt_BuildsANewUri(string logical, string expected)
    {
        // Arrange
        var state = new EndpointState(DiscoveredEndpoint.Create("127.0.0.1", 9001), 0);
        var previous = LogicalUri.Rewrite(new Uri("http://orders/items?page=2"), state);

        // Act
        var uri = LogicalUri.Rewrite(new Uri(logical), state);

        // Assert
        Assert.NotSame(previous, uri);
        Assert.Equal(expected, uri.AbsoluteUri);
    }

    [Fact]
    public void Rewrite_EndpointAddressChangedSinceLastAttempt_BuildsTheUriOfTheNewAddress()
    {
        // Arrange: the same record, described again by its source with another port.
        var state = new EndpointState(DiscoveredEndpoint.Create("127.0.0.1", 9001), 0);
        LogicalUri.Rewrite(new Uri("http://orders/x"), state);
        state.SetEndpoint(DiscoveredEndpoint.Create("127.0.0.1", 9002));

        // Act
        var uri = LogicalUri.Rewrite(new Uri("http://orders/x"), state);

        // Assert
        Assert.Equal("http://127.0.0.1:9002/x", uri.AbsoluteUri);
    }

    [Fact]
    public void Rewrite_OneEndpointCalledOnOnePath_AllocatesNoUriPerAttempt()
    {
        // Arrange: the logical URI as the caller hands it over, built once; warm the cache.
        var state = new EndpointState(DiscoveredEndpoint.Create("127.0.0.1", 9001), 0);
        var logical = new Uri("http://orders/items");
        _ = logical.PathAndQuery;
        LogicalUri.Rewrite(logical, state);
        var uncached = GC.GetAllocatedBytesForCurrentThread();
        LogicalUri.Rewrite(logical, "http", "127.0.0.1:9001");
        uncached = GC.GetAllocatedBytesForCurrentThread() - uncached;

        // Act
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            LogicalUri.Rewrite(logical, state);
        }

        var perAttempt = (GC.GetAllocatedBytesForCurrentThread() - before) / 100;

        // Assert: far below a URI and its string (0 B measured: the cache is matched on the logical URI's original text).
        Assert.True(perAttempt < uncached / 2, $"{perAttempt} B per attempt with the cache, {uncached} B without");
    }
}

public sealed class LogicalUriCachingTests
{
    [Fact]
    public async Task Send_ServiceUrisAndPassThroughUrisAlternating_EachGoesWhereItsOwnTextSays()
    {
        // Arrange: one client, one endpoint; the handler remembers the last logical URI's service and each endpoint its
        // last physical URI, so alternating URIs must each be read afresh.
        var seen = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var handler = new Lodestar.Tests.Resilience.ScriptedHandler(call => Lodestar.Tests.Resilience.ScriptedHandler.Status(200));
        var recorder = new RecordingTransport(handler, seen);
        await using var host = Lodestar.Tests.Resilience.ResilienceTestHost.Create(primaryHandler: recorder);
        host.SetEndpoints("127.0.0.1:9001");
        var client = host.CreateClient();
        string[] uris =
        [
            "http://orders/a?x=1", "http://127.0.0.1:7000/a?x=1", "http://orders/b", "http://orders/a?x=1", "http://localhost:7001/c",
            "http://orders/a?x=2", "http://orders/a?x=2",
        ];

        // Act
        foreach (var uri in uris)
        {
            using var response = await client.GetAsync(uri);
        }

        // Assert
        Assert.Equal(
            [
                "http://127.0.0.1:9001/a?x=1", "http://127.0.0.1:7000/a?x=1", "http://127.0.0.1:9001/b", "http://127.0.0.1:9001/a?x=1",
                "http://localhost:7001/c", "http://127.0.0.1:9001/a?x=2", "http://127.0.0.1:9001/a?x=2",
            ],
            seen.ToArray());
    }

    private sealed class RecordingTransport(HttpMessageHandler inner, System.Collections.Concurrent.ConcurrentQueue<string> seen) : DelegatingHandler(inner)
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            seen.Enqueue(request.RequestUri!.AbsoluteUri);
            return base.SendAsync(request, cancellationToken);
        }
    }
}
