using System.Diagnostics;
using Lodestar.Kubernetes.Discovery.Internal;
using Lodestar.Kubernetes.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Kubernetes;

namespace Lodestar.Kubernetes.Tests.Discovery;

/// <summary>The source against the fake API server in JSON.</summary>
public sealed class EndpointSliceSourceJsonTests : EndpointSliceSourceTests
{
    protected override KubernetesEncoding Encoding => KubernetesEncoding.Json;
}

/// <summary>The source against the fake API server in protobuf.</summary>
public sealed class EndpointSliceSourceProtobufTests : EndpointSliceSourceTests
{
    protected override KubernetesEncoding Encoding => KubernetesEncoding.Protobuf;
}

/// <summary>The source's list/watch behaviour, run once per wire encoding by the derived classes.</summary>
public abstract class EndpointSliceSourceTests : IAsyncLifetime
{
    private static readonly TimeSpan s_wait = SourceHarness.Wait;
    private FakeKubernetesApiServer _server = null!;

    /// <summary>Gets the encoding every source of the suite asks for.</summary>
    protected abstract KubernetesEncoding Encoding { get; }

    public async Task InitializeAsync() => _server = await FakeKubernetesApiServer.StartAsync();

    public async Task DisposeAsync()
    {
        var (protobuf, json) = (_server.ProtobufResponses, _server.JsonResponses);
        await _server.DisposeAsync();

        // Every answer of the suite was in its encoding, so each test really ran in it.
        Assert.Equal(0, Encoding == KubernetesEncoding.Json ? protobuf : json);
    }

    private Task<SourceHarness> StartAsync(string service = "orders", Action<KubernetesSourceOptions>? configure = null)
        => SourceHarness.StartAsync(_server, service, o =>
        {
            o.Encoding = Encoding;
            configure?.Invoke(o);
        });

    private static FakeEndpointSlice Slice(string name, params string[] addresses)
        => FakeEndpointSlice.Create("shop", name, "orders", 8080, addresses.Select(a => FakeEndpoint.ReadyAt(a)).ToArray());

    private int Count(string prefix) => _server.Requests.Count(r => r.StartsWith(prefix, StringComparison.Ordinal));

    [Fact]
    public async Task RunAsync_ManySlices_ListsInPagesWithGzipThenWatches()
    {
        for (var i = 0; i < 5; i++)
        {
            _server.Upsert(Slice("orders-" + i, $"10.0.0.{i + 1}"));
        }

        _server.Upsert(FakeEndpointSlice.Create("shop", "payments-1", "payments", 8080, FakeEndpoint.ReadyAt("10.9.9.9")));
        await using var harness = await StartAsync(configure: o => o.PageSize = 2);

        await Eventually.TrueAsync(() => harness.Observer.Addresses.Length == 5 && _server.OpenWatches == 1, s_wait, "all five slices are listed and a watch is open");
        Assert.Equal(3, Count("LIST"));
        Assert.Contains(_server.Requests, r => r.StartsWith("LIST", StringComparison.Ordinal) && r.Contains("continue=", StringComparison.Ordinal));
        Assert.True(_server.GzipResponses >= 3, "list responses are gzip-compressed when the client accepts gzip");
        Assert.DoesNotContain("10.9.9.9:8080", harness.Observer.Addresses);
        var watch = _server.Requests.Single(r => r.StartsWith("WATCH", StringComparison.Ordinal));
        Assert.Contains("allowWatchBookmarks=true", watch, StringComparison.Ordinal);
        Assert.Contains("resourceVersion=" + _server.ResourceVersion, watch, StringComparison.Ordinal);
        var timeout = int.Parse(watch.Split("timeoutSeconds=")[1].Split('&')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(timeout, 300, 600);
    }

    [Fact]
    public async Task RunAsync_WatchEvents_FollowsAddModifyAndDelete()
    {
        _server.Upsert(Slice("orders-a", "10.0.0.1"));
        await using var harness = await StartAsync();
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080") && _server.OpenWatches == 1, s_wait, "initial list");

        _server.Upsert(Slice("orders-b", "10.0.0.2"));
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080", "10.0.0.2:8080"), s_wait, "ADDED slice is merged");
        _server.Upsert(Slice("orders-a", "10.0.0.3"));
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.2:8080", "10.0.0.3:8080"), s_wait, "MODIFIED slice replaces its endpoints");
        _server.Delete("shop", "orders-b");
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.3:8080"), s_wait, "DELETED slice is removed");
        Assert.Equal(1, Count("LIST"));
    }

    [Fact]
    public async Task RunAsync_StreamCutMidEvent_RewatchesFromLastVersionWithoutLosingTheEvent()
    {
        _server.Upsert(Slice("orders-a", "10.0.0.1"));
        await using var harness = await StartAsync();
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080") && harness.Logs.Entries.Any(e => e.EventId.Name == "Watching"), s_wait, "the client reads the watch stream");
        var seen = _server.ResourceVersion;

        _server.CutNextEvent();
        _server.Upsert(Slice("orders-b", "10.0.0.2"));
        _server.Upsert(Slice("orders-a"));

        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.2:8080"), s_wait, "the cut ADDED and the next MODIFIED arrive after the re-watch");
        Assert.Equal(1, Count("LIST"));

        // Compared by position, not text: two watches from one resourceVersion may ask for the same random timeout.
        Assert.Contains(_server.Requests.Where(r => r.StartsWith("WATCH", StringComparison.Ordinal)).Skip(1), r => r.Contains("resourceVersion=" + seen + "&", StringComparison.Ordinal));
        Assert.True(Count("WATCH") >= 2);
        Assert.Contains(harness.Logs.Entries, e => e.EventId.Name == "StreamCut");
    }

    [Theory]
    [InlineData(ExpiredWatchAnswer.HttpGone)]
    [InlineData(ExpiredWatchAnswer.ErrorEvent)]
    public async Task RunAsync_ResourceVersionExpired_RelistsAndKeepsEveryChange(ExpiredWatchAnswer answer)
    {
        _server.ExpiredWatchAnswer = answer;
        _server.Upsert(Slice("orders-a", "10.0.0.1"));
        _server.Upsert(Slice("orders-b", "10.0.0.2"));
        await using var harness = await StartAsync();
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080", "10.0.0.2:8080") && _server.OpenWatches == 1, s_wait, "initial list");

        // While the client cannot watch, one slice is added, one deleted, and the history is compacted.
        _server.Unavailable = true;
        _server.Upsert(Slice("orders-c", "10.0.0.3"));
        _server.Delete("shop", "orders-a");
        _server.Compact();
        await Eventually.TrueAsync(() => _server.Requests.Any(r => r.StartsWith("REJECTED 503", StringComparison.Ordinal)), s_wait, "the client retried during the outage");
        Assert.True(harness.Observer.Has("10.0.0.1:8080", "10.0.0.2:8080"), "the last good set stays during the outage");
        _server.Unavailable = false;

        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.2:8080", "10.0.0.3:8080"), s_wait, "the re-list after 410 catches up");
        Assert.Equal(2, Count("LIST"));
        await Eventually.TrueAsync(() => _server.OpenWatches == 1, s_wait, "a new watch from the re-list's version");
        _server.Upsert(Slice("orders-d", "10.0.0.4"));
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.4:8080"), s_wait, "watching resumes after the re-list");
    }

    [Fact]
    public async Task RunAsync_ApiServerDownForSeconds_KeepsLastGoodSetAndCatchesUp()
    {
        _server.Upsert(Slice("orders-a", "10.0.0.1"));
        _server.Upsert(Slice("orders-b", "10.0.0.2"));
        await using var harness = await StartAsync();
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080", "10.0.0.2:8080") && _server.OpenWatches == 1, s_wait, "initial list");
        var snapshots = harness.Observer.SnapshotCount;

        await _server.StopAsync();
        var down = Stopwatch.StartNew();
        _server.Upsert(Slice("orders-c", "10.0.0.3"));
        _server.Delete("shop", "orders-a");
        await Eventually.TrueAsync(() => harness.Observer.Errors.Count >= 3 && down.Elapsed >= TimeSpan.FromSeconds(3), s_wait, "connection errors reported through a 3 s outage");
        Assert.Equal(snapshots, harness.Observer.SnapshotCount);
        Assert.True(harness.Observer.Has("10.0.0.1:8080", "10.0.0.2:8080"), "the last good set keeps serving");
        var error = harness.Observer.Errors[^1].Message;
        Assert.Contains(_server.Url.GetLeftPart(UriPartial.Authority), error, StringComparison.Ordinal);
        Assert.Contains("'fake'", error, StringComparison.Ordinal);
        await _server.RestartAsync();

        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.2:8080", "10.0.0.3:8080"), s_wait, "the add and delete made during the outage arrive");
        Assert.Equal(1, Count("LIST"));
    }

    [Fact]
    public async Task RunAsync_Bookmark_RewatchResumesFromBookmarkVersion()
    {
        _server.Upsert(Slice("orders-a", "10.0.0.1"));
        await using var harness = await StartAsync();
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080") && _server.OpenWatches == 1, s_wait, "initial list");

        // Changes to other services move the resourceVersion without sending this watch an event.
        for (var i = 0; i < 3; i++)
        {
            _server.Upsert(FakeEndpointSlice.Create("shop", "payments-" + i, "payments", 8080, FakeEndpoint.ReadyAt("10.9.0." + i)));
        }

        var bookmark = _server.ResourceVersion;
        _server.SendBookmark();
        _server.EndWatches(abort: false);

        await Eventually.TrueAsync(() => _server.Requests.Any(r => r.StartsWith("WATCH", StringComparison.Ordinal) && r.Contains("resourceVersion=" + bookmark + "&", StringComparison.Ordinal)), s_wait, "the re-watch starts at the bookmark");
        Assert.Equal(1, Count("LIST"));
    }

    [Fact]
    public async Task RunAsync_MalformedEventLine_ReportedAndSkippedWatchContinues()
    {
        _server.Upsert(Slice("orders-a", "10.0.0.1"));
        await using var harness = await StartAsync();
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080") && _server.OpenWatches == 1, s_wait, "initial list");

        _server.SendMalformedLine();
        _server.Upsert(Slice("orders-b", "10.0.0.2"));

        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080", "10.0.0.2:8080"), s_wait, "the event after the bad line is applied");
        var error = Assert.Single(harness.Observer.Errors);
        Assert.Contains("malformed watch event", error.Message, StringComparison.Ordinal);
        Assert.Contains("service 'orders' in namespace 'shop'", error.Message, StringComparison.Ordinal);
        Assert.Contains(harness.Logs.Entries, e => e.EventId.Name == "MalformedEvent");
        Assert.Equal(1, Count("LIST"));
        Assert.Equal(1, Count("WATCH"));
    }

    [Fact]
    public async Task RunAsync_NotReadyEndpoint_Excluded()
    {
        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-a", "orders", 8080,
            FakeEndpoint.ReadyAt("10.0.0.1"), new FakeEndpoint("10.0.0.2") { Ready = false, Serving = false }, new FakeEndpoint("10.0.0.3") { Ready = null, Serving = null }));
        await using var harness = await StartAsync();

        await Eventually.TrueAsync(() => harness.Observer.Latest is not null, s_wait, "initial list");
        Assert.Equal(["10.0.0.1:8080", "10.0.0.3:8080"], harness.Observer.Addresses);

        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-a", "orders", 8080,
            new FakeEndpoint("10.0.0.1") { Ready = false }, new FakeEndpoint("10.0.0.2"), new FakeEndpoint("10.0.0.3") { Ready = null, Serving = null }));
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.2:8080", "10.0.0.3:8080"), s_wait, "readiness changes are followed");
    }

    [Fact]
    public async Task RunAsync_NoReadyEndpoint_FallsBackToServingTerminating()
    {
        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-a", "orders", 8080,
            FakeEndpoint.ReadyAt("10.0.0.1"), FakeEndpoint.TerminatingAt("10.0.0.2"), FakeEndpoint.TerminatingAt("10.0.0.3", serving: false)));
        await using var harness = await StartAsync();
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080") && _server.OpenWatches == 1, s_wait, "only the ready endpoint while one is ready");

        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-a", "orders", 8080,
            FakeEndpoint.TerminatingAt("10.0.0.1"), FakeEndpoint.TerminatingAt("10.0.0.2"), FakeEndpoint.TerminatingAt("10.0.0.3", serving: false)));
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080", "10.0.0.2:8080"), s_wait, "serving and terminating endpoints when none is ready");
        Assert.All(harness.Observer.Latest!, e => Assert.Equal("true", e.Metadata[EndpointSliceMerger.TerminatingKey]));

        _server.Upsert(Slice("orders-b", "10.0.0.9"));
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.9:8080"), s_wait, "a ready endpoint ends the fallback");
    }

    [Fact]
    public async Task RunAsync_AddressInTwoSlices_CountedOnceUntilBothDropIt()
    {
        _server.Upsert(Slice("orders-a", "10.0.0.1", "10.0.0.2"));
        _server.Upsert(Slice("orders-b", "10.0.0.2", "10.0.0.3"));
        await using var harness = await StartAsync();

        await Eventually.TrueAsync(() => harness.Observer.Latest is not null && _server.OpenWatches == 1, s_wait, "initial list");
        Assert.Equal(["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"], harness.Observer.Addresses);
        Assert.Equal(3, harness.Observer.Latest!.Count);

        _server.Upsert(Slice("orders-a", "10.0.0.1"));
        _server.Upsert(Slice("orders-b", "10.0.0.3", "10.0.0.4"));
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080", "10.0.0.3:8080", "10.0.0.4:8080"), s_wait, "the moved address leaves when its last slice drops it");
    }

    [Fact]
    public async Task RunAsync_EndpointAttributes_CarryZoneNodePodAndHints()
    {
        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-a", "orders", 8080,
            new FakeEndpoint("10.0.0.1") { Zone = "eu-1a", NodeName = "node-7", PodName = "orders-5f9c", HintZones = ["eu-1a", "eu-1b"] }));
        await using var harness = await StartAsync();

        await Eventually.TrueAsync(() => harness.Observer.Latest is { Count: 1 }, s_wait, "initial list");
        var endpoint = harness.Observer.Latest![0];
        Assert.Equal("eu-1a", endpoint.Zone);
        Assert.Equal("node-7", endpoint.Metadata[EndpointSliceMerger.NodeKey]);
        Assert.Equal("orders-5f9c", endpoint.Metadata[EndpointSliceMerger.PodKey]);
        Assert.Equal("shop", endpoint.Metadata[EndpointSliceMerger.NamespaceKey]);
        Assert.Equal("eu-1a,eu-1b", endpoint.Metadata[EndpointSliceMerger.HintZonesKey]);
    }

    [Fact]
    public async Task RunAsync_PortName_ChoosesNamedPortOrReportsTheChoices()
    {
        _server.Upsert(new FakeEndpointSlice("shop", "orders-a", "orders", [FakeEndpoint.ReadyAt("10.0.0.1")], [new FakePort("http", 8080), new FakePort("grpc", 9090)]));
        await using var named = await StartAsync(configure: o => o.PortName = "grpc");
        await using var unnamed = await StartAsync();

        await Eventually.TrueAsync(() => named.Observer.Has("10.0.0.1:9090"), s_wait, "the named port is used");
        await Eventually.TrueAsync(() => unnamed.Observer.Errors.Count > 0, s_wait, "two ports without a name is reported");
        Assert.Contains("http 8080, grpc 9090", unnamed.Observer.Errors[0].Message, StringComparison.Ordinal);
        Assert.Contains("PortName", unnamed.Observer.Errors[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_DnsStyleName_WatchesItsNamespace()
    {
        _server.Upsert(FakeEndpointSlice.Create("billing", "orders-x", "orders", 8080, FakeEndpoint.ReadyAt("10.1.0.1")));
        _server.Upsert(Slice("orders-a", "10.0.0.1"));
        await using var harness = await StartAsync("orders.billing.svc.cluster.local");

        await Eventually.TrueAsync(() => harness.Observer.Has("10.1.0.1:8080"), s_wait, "the namespace comes from the name, not the options");
    }
}
