using Lodestar.Kubernetes.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Kubernetes;

namespace Lodestar.Kubernetes.Tests.Hostile;

/// <summary>
/// The source against an API server that answers badly: each case asserts a clear error naming the server and the
/// item, that the last good endpoint set stays in force, and that the source recovers once the server behaves.
/// </summary>
public sealed class HostileApiServerTests : IAsyncLifetime
{
    private static readonly TimeSpan s_wait = SourceHarness.Wait;
    private FakeKubernetesApiServer _server = null!;

    public async Task InitializeAsync() => _server = await FakeKubernetesApiServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private string Authority => _server.Url.GetLeftPart(UriPartial.Authority);

    private int Count(string prefix) => _server.Requests.Count(r => r.StartsWith(prefix, StringComparison.Ordinal));

    private static FakeEndpointSlice Slice(string name, params string[] addresses)
        => FakeEndpointSlice.Create("shop", name, "orders", 8080, addresses.Select(a => FakeEndpoint.ReadyAt(a)).ToArray());

    /// <summary>A source that has listed orders-a (10.0.0.1) and watches.</summary>
    private async Task<SourceHarness> StartGoodAsync()
    {
        _server.Upsert(Slice("orders-a", "10.0.0.1"));
        var harness = await SourceHarness.StartAsync(_server);
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080") && _server.OpenWatches == 1, s_wait, "the good state: listed and watching");
        return harness;
    }

    /// <summary>Makes the watch end with an ERROR 410 event, so the source lists again (and meets the list fault).</summary>
    private void ForceRelist() => _server.SendErrorEvent(410, "too old resource version", "Expired");

    /// <summary>Proves recovery: a new slice reaches the observer through a list and a watch that work again.</summary>
    private async Task AssertRecoversAsync(SourceHarness harness, int lists)
    {
        await Eventually.TrueAsync(() => Count("LIST") >= lists && _server.OpenWatches == 1, s_wait, "the source lists and watches again");
        _server.Upsert(Slice("orders-z", "10.0.0.26"));
        await Eventually.TrueAsync(() => harness.Observer.Latest!.Any(e => e.Address == "10.0.0.26:8080"), s_wait, "changes flow again");
    }

    private static void AssertNames(Exception error, string authority, params string[] parts)
    {
        Assert.Contains(authority, error.Message, StringComparison.Ordinal);
        Assert.Contains("service 'orders' in namespace 'shop'", error.Message, StringComparison.Ordinal);
        foreach (var part in parts)
        {
            Assert.Contains(part, error.Message, StringComparison.Ordinal);
        }
    }

    public static TheoryData<string, string, string> BadListBodies => new()
    {
        { "garbage bytes", "\u0001\u00ff<html>garbage</html>", "malformed JSON" },
        { "truncated JSON", """{"kind":"EndpointSliceList","metadata":{"resourceVersion":"500"},"items":[{"metadata":{"name":"orders-a","resourceVersion":"5""", "malformed JSON" },
        { "array where an object belongs", """{"metadata":{"resourceVersion":"500"},"items":[["orders-a"]]}""", "$.items[0]" },
        { "string where a number belongs", """{"metadata":{"resourceVersion":"500"},"items":[{"metadata":{"name":"orders-a"},"ports":[{"name":"http","port":"eighty"}]}]}""", "$.items[0].ports[0].port" },
        { "number out of range", """{"metadata":{"resourceVersion":"500"},"items":[{"metadata":{"name":"orders-a"},"ports":[{"port":99999999999999}]}]}""", "$.items[0].ports[0].port" },
        { "undecodable string escape", """{"metadata":{"resourceVersion":"500"},"items":[{"metadata":{"name":"orders-\uZZZZ"}}]}""", "malformed JSON" },
        { "null item", """{"metadata":{"resourceVersion":"500"},"items":[null]}""", "null item at position 0" },
        { "item without a name", """{"metadata":{"resourceVersion":"500"},"items":[{"metadata":{},"endpoints":[]}]}""", "without metadata.name" },
        { "no resourceVersion", """{"metadata":{},"items":[]}""", "no resourceVersion" },
    };

    [Theory]
    [MemberData(nameof(BadListBodies))]
    public async Task RunAsync_UnreadableListAnswer_ReportedLastGoodSetKeptThenRecovers(string fault, string body, string expected)
    {
        await using var harness = await StartGoodAsync();

        _server.ReplaceNextListBody(body);
        ForceRelist();

        await Eventually.TrueAsync(() => harness.Observer.Errors.Count > 0, s_wait, "the bad list is reported: " + fault);
        var error = harness.Observer.Errors[0];
        AssertNames(error, Authority, expected, "GET /apis/discovery.k8s.io/v1/namespaces/shop/endpointslices");
        Assert.True(harness.Observer.Has("10.0.0.1:8080"), "the last good set stays in force");
        await AssertRecoversAsync(harness, lists: 3);
    }

    [Theory]
    [InlineData("""{"metadata":{"name":"orders-a","resourceVersion":"7"},"endpoints":[null],"ports":[{"name":"http","port":8080}]}""", "EndpointSlice 'orders-a' endpoints[0] is null")]
    [InlineData("""{"metadata":{"name":"orders-a","resourceVersion":"7"},"endpoints":[{"addresses":[null]}],"ports":[{"name":"http","port":8080}]}""", "EndpointSlice 'orders-a' endpoints[0] has a null or empty addresses[0]")]
    [InlineData("""{"metadata":{"name":"orders-a","resourceVersion":"7"},"endpoints":[{"addresses":["10.0.0.9"]}],"ports":[null]}""", "EndpointSlice 'orders-a' has a null ports[0]")]
    public async Task RunAsync_ListedSliceWithNulls_SkippedAndItsPreviousEndpointsKept(string slice, string expected)
    {
        await using var harness = await StartGoodAsync();

        _server.ReplaceNextListBody($$"""{"metadata":{"resourceVersion":"{{_server.ResourceVersion}}"},"items":[{{slice}}]}""");
        ForceRelist();

        await Eventually.TrueAsync(() => harness.Observer.Errors.Count > 0 && Count("LIST") == 2, s_wait, "the unreadable slice is reported");
        AssertNames(harness.Observer.Errors[0], Authority, expected, "its previous endpoints stay in force");
        await Eventually.TrueAsync(() => _server.OpenWatches == 1, s_wait, "the source watches from the list");
        Assert.True(harness.Observer.Has("10.0.0.1:8080"), "orders-a keeps its last readable endpoints");
        _server.Upsert(Slice("orders-a", "10.0.0.2"));
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.2:8080"), s_wait, "a readable version of the slice applies");
    }

    public static TheoryData<string, string, string> BadWatchLines => new()
    {
        { "garbage bytes", "\u0001\u00ff<html>garbage</html>", "malformed watch event" },
        { "truncated JSON", """{"type":"MODIFIED","object":{"metadata":{"name":"orders-a","resourceVersion":""", "malformed watch event" },
        { "array where an object belongs", """{"type":"MODIFIED","object":[1,2]}""", "$.object" },
        { "string where a number belongs", """{"type":"MODIFIED","object":{"metadata":{"name":"orders-a"},"ports":[{"port":"eighty"}]}}""", "$.object.ports[0].port" },
        { "undecodable string escape", """{"type":"MODIFIED","object":{"metadata":{"name":"orders-\uZZZZ"}}}""", "malformed watch event" },
        { "null endpoint", """{"type":"MODIFIED","object":{"metadata":{"name":"orders-a","resourceVersion":"9999"},"endpoints":[null],"ports":[{"port":8080}]}}""", "EndpointSlice 'orders-a' endpoints[0] is null" },
        { "null address", """{"type":"MODIFIED","object":{"metadata":{"name":"orders-a","resourceVersion":"9999"},"endpoints":[{"addresses":[null]}],"ports":[{"port":8080}]}}""", "addresses[0]" },
        { "null zone hint", """{"type":"MODIFIED","object":{"metadata":{"name":"orders-a","resourceVersion":"9999"},"endpoints":[{"addresses":["10.0.0.9"],"hints":{"forZones":[null]}}],"ports":[{"port":8080}]}}""", "null hints.forZones entry" },
        { "event without an object", """{"type":"MODIFIED"}""", "MODIFIED watch event without an object" },
        { "unknown event type", """{"type":"RESIZED","object":{}}""", "unknown type 'RESIZED'" },
        { "null event", "null", "unknown type (none)" },
    };

    [Theory]
    [MemberData(nameof(BadWatchLines))]
    public async Task RunAsync_UnreadableWatchEvent_ReportedSkippedAndTheWatchGoesOn(string fault, string line, string expected)
    {
        // These are faults of JSON text; ProtobufWatchTests holds their protobuf counterparts.
        _server.ServeProtobuf = false;
        await using var harness = await StartGoodAsync();

        _server.SendRawLine(line);
        _server.Upsert(Slice("orders-b", "10.0.0.2"));

        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080", "10.0.0.2:8080"), s_wait, "the event after the bad line applies: " + fault);
        var error = Assert.Single(harness.Observer.Errors);
        AssertNames(error, Authority, expected);
        Assert.Equal(1, Count("WATCH"));
        Assert.Equal(1, Count("LIST"));
    }

    [Fact]
    public async Task RunAsync_ResourceVersionGoesBackwards_ReportedNotAppliedAndRelisted()
    {
        await using var harness = await StartGoodAsync();
        var current = _server.ResourceVersion;

        // A stale version of orders-a from long ago, as a server restored from an old backup would send.
        _server.SendRawLine(FakeKubernetesApiServer.EventLine("MODIFIED", Slice("orders-a", "10.0.0.66"), resourceVersion: 3));

        await Eventually.TrueAsync(() => Count("LIST") == 2 && _server.OpenWatches == 1, s_wait, "the source lists again");

        // Shared, the report reaches the service's own loop as a message, which it may read after the new request.
        await Eventually.TrueAsync(() => harness.Observer.Errors.Count > 0, s_wait, "the problem is reported");
        var error = Assert.Single(harness.Observer.Errors);
        AssertNames(error, Authority, "resourceVersion 3", $"after resourceVersion {current}", "EndpointSlice 'orders-a'", "went backwards");
        Assert.True(harness.Observer.Has("10.0.0.1:8080"), "the stale event was not applied");
        Assert.DoesNotContain(harness.Observer.Latest!, e => e.Address == "10.0.0.66:8080");
        await AssertRecoversAsync(harness, lists: 2);
    }

    [Fact]
    public async Task RunAsync_ErrorAnswersOfEveryKind_ReportedWithTheirStatusAndRecovered()
    {
        await using var harness = await StartGoodAsync();

        _server.FailNext(FakeRequestKind.List, 500);
        _server.FailNext(FakeRequestKind.List, 403);
        ForceRelist();

        await Eventually.TrueAsync(() => harness.Observer.Errors.Count >= 2, s_wait, "both failed lists are reported");
        AssertNames(harness.Observer.Errors[0], Authority, "500");
        AssertNames(harness.Observer.Errors[1], Authority, "403 Forbidden", "cannot list resource");
        Assert.True(harness.Observer.Has("10.0.0.1:8080"), "the last good set stays in force");
        Assert.Equal(2, Count("REJECTED"));
        await AssertRecoversAsync(harness, lists: 2);
    }
}
