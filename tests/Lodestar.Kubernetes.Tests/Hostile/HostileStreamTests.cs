using Lodestar.Kubernetes.Api.Internal;
using Lodestar.Kubernetes.Discovery.Internal;
using Lodestar.Kubernetes.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Kubernetes;
using Xunit.Abstractions;

namespace Lodestar.Kubernetes.Tests.Hostile;

/// <summary>
/// Hostile answers that are about time and size: slow drips, silent streams, floods of odd events, oversized lists and
/// events. Time runs on a recording clock; memory is asserted in bytes allocated.
/// </summary>
[Collection(AllocationCollection.Name)]
public sealed class HostileStreamTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const long Cap = 1024 * 1024;
    private const long Oversized = 64L * 1024 * 1024;
    private static readonly TimeSpan s_wait = SourceHarness.Wait;
    private FakeKubernetesApiServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await FakeKubernetesApiServer.StartAsync();
        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-a", "orders", 8080, FakeEndpoint.ReadyAt("10.0.0.1")));
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private string Authority => _server.Url.GetLeftPart(UriPartial.Authority);

    private int Count(string prefix) => _server.Requests.Count(r => r.StartsWith(prefix, StringComparison.Ordinal));

    /// <summary>Starts a source on a recording clock; <paramref name="alone"/> runs it without a shared namespace watch (one loop, one backoff timer).</summary>
    private async Task<(SourceHarness Harness, RecordingTimeProvider Clock)> StartWatchingAsync(bool alone = false)
    {
        var clock = new RecordingTimeProvider();
        var harness = await SourceHarness.StartAsync(_server, timeProvider: clock, random: () => 0.5, configure: o => o.ShareNamespaceWatches = !alone);
        Assert.Equal(KubernetesApiClient.RequestTimeout, await clock.NextFiniteTimerAsync());
        Assert.Equal(KubernetesSourceOptions.DefaultWatchStallTimeout, await clock.NextFiniteTimerAsync());
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080") && _server.OpenWatches == 1, s_wait, "listed and watching");
        return (harness, clock);
    }

    private async Task AssertRecoversAsync(SourceHarness harness)
    {
        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-b", "orders", 8080, FakeEndpoint.ReadyAt("10.0.0.2")));
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080", "10.0.0.2:8080"), s_wait, "changes flow again");
    }

    [Fact]
    public async Task RunAsync_OddEventsFlood_ReportedOncePerKindPerMinute()
    {
        var (harness, clock) = await StartWatchingAsync();
        await using var _ = harness;

        for (var i = 0; i < 5; i++)
        {
            _server.SendRawLine("""{"type":"ADDED"}""");
            _server.SendRawLine("""{"type":"SURPRISE","object":{}}""");
        }

        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-b", "orders", 8080, FakeEndpoint.ReadyAt("10.0.0.2")));
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080", "10.0.0.2:8080"), s_wait, "the lines before the event were read");
        Assert.Equal(2, harness.Observer.Errors.Count);
        Assert.Contains(harness.Observer.Errors, e => e.Message.Contains("ADDED watch event without an object", StringComparison.Ordinal));
        Assert.Contains(harness.Observer.Errors, e => e.Message.Contains("unknown type 'SURPRISE'", StringComparison.Ordinal));
        Assert.All(harness.Observer.Errors, e => Assert.Contains(Authority, e.Message, StringComparison.Ordinal));

        clock.Advance(EndpointSliceSource.ReportInterval);
        _server.SendRawLine("""{"type":"ADDED"}""");
        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-c", "orders", 8080, FakeEndpoint.ReadyAt("10.0.0.3")));
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"), s_wait, "the next lines were read");

        Assert.Equal(3, harness.Observer.Errors.Count);
        Assert.Contains("4 more like it since the last report were not reported", harness.Observer.Errors[2].Message, StringComparison.Ordinal);
        Assert.Single(_server.Requests, r => r.StartsWith("WATCH", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunAsync_ListDripsForever_EndedByTheRequestDeadlineThenRecovers()
    {
        var (harness, clock) = await StartWatchingAsync();
        await using var _ = harness;

        // A bookmark (progress) then an ERROR 410: the source lists again at once, and that list drips.
        _server.DripNextList(TimeSpan.FromMilliseconds(20));
        _server.SendBookmark();
        _server.SendErrorEvent(410, "too old resource version", "Expired");
        Assert.Equal(KubernetesApiClient.RequestTimeout, await clock.NextFiniteTimerAsync());
        await Eventually.TrueAsync(() => Count("LIST") == 2 && _server.DrippedBytes > 0, s_wait, "the dripping list is under way");
        clock.Advance(KubernetesApiClient.RequestTimeout);

        var backoff = await clock.NextFiniteTimerAsync();
        Assert.Equal(TimeSpan.FromMilliseconds(400), backoff);

        // Shared, the failure of the shared list reaches the service's own loop as a message: it may land just after
        // the shared loop's backoff timer is armed.
        await Eventually.TrueAsync(() => harness.Observer.Errors.Count > 0, s_wait, "the failed list is reported");
        var error = Assert.Single(harness.Observer.Errors);
        Assert.Contains(Authority, error.Message, StringComparison.Ordinal);
        Assert.Contains("did not answer GET /apis/discovery.k8s.io/v1/namespaces/shop/endpointslices", error.Message, StringComparison.Ordinal);
        Assert.Contains("within 30 s", error.Message, StringComparison.Ordinal);
        Assert.True(harness.Observer.Has("10.0.0.1:8080"), "the last good set stays in force");

        clock.Advance(backoff);
        await Eventually.TrueAsync(() => Count("LIST") == 3 && _server.OpenWatches == 1, s_wait, "the next list is whole and a watch opens");
        await AssertRecoversAsync(harness);
    }

    [Fact]
    public async Task RunAsync_EventDripsAndNeverEnds_StreamEndedAtTheStallBoundAndResumed()
    {
        var (harness, clock) = await StartWatchingAsync(alone: true);
        await using var _ = harness;
        var lastSeen = _server.ResourceVersion;

        _server.DripEvent(FakeKubernetesApiServer.EventLine("MODIFIED", FakeEndpointSlice.Create("shop", "orders-a", "orders", 8080, FakeEndpoint.ReadyAt("10.0.0.9")), 9999),
            TimeSpan.FromMilliseconds(5), chunk: 8);
        await Eventually.TrueAsync(() => _server.DrippedBytes >= 32, s_wait, "part of the event has been written");
        clock.Advance(KubernetesSourceOptions.DefaultWatchStallTimeout);

        Assert.Equal(KubernetesSourceOptions.DefaultWatchStallTimeout, await clock.NextFiniteTimerAsync());
        await Eventually.TrueAsync(() => Count("WATCH") == 2 && _server.OpenWatches == 1, s_wait, "a new watch after the stall");
        Assert.Contains("resourceVersion=" + lastSeen + "&", _server.Requests.Last(r => r.StartsWith("WATCH", StringComparison.Ordinal)), StringComparison.Ordinal);
        var error = Assert.Single(harness.Observer.Errors);
        Assert.Contains("sent nothing for 150 s", error.Message, StringComparison.Ordinal);
        Assert.Contains(Authority, error.Message, StringComparison.Ordinal);
        Assert.True(harness.Observer.Has("10.0.0.1:8080"), "the half event was not applied; the last good set stays");
        await AssertRecoversAsync(harness);
    }

    [Fact]
    public async Task RunAsync_OversizedList_FailsAtTheCapNamingServerAndLimitThenRecovers()
    {
        await using var harness = await SourceHarness.StartAsync(_server, configure: o => o.MaxListResponseBytes = Cap);
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080") && _server.OpenWatches == 1, s_wait, "listed and watching");

        _server.SendOversizedNextList(Oversized);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        _server.SendErrorEvent(410, "too old resource version", "Expired");
        await Eventually.TrueAsync(() => harness.Observer.Errors.Count > 0, s_wait, "the oversized list is reported");
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        output.WriteLine($"oversized list: {allocated >> 10} KiB allocated for a {Oversized >> 20} MiB answer under a {Cap >> 20} MiB cap");
        var error = harness.Observer.Errors[0];
        Assert.Contains(Authority, error.Message, StringComparison.Ordinal);
        Assert.Contains("larger than the limit of 1048576 bytes", error.Message, StringComparison.Ordinal);
        Assert.Contains("MaxListResponseBytes", error.Message, StringComparison.Ordinal);
        Assert.True(allocated < 16 * Cap, $"reading a {Oversized >> 20} MiB list under a {Cap >> 20} MiB cap allocated {allocated >> 10} KiB");
        Assert.True(harness.Observer.Has("10.0.0.1:8080"), "the last good set stays in force");
        await Eventually.TrueAsync(() => _server.OpenWatches == 1, s_wait, "the next list is whole and a watch opens");
        await AssertRecoversAsync(harness);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task RunAsync_OversizedWatchEvent_FailsAtTheCapNamingServerAndLimitThenResumes(bool protobuf)
    {
        _server.ServeProtobuf = protobuf;
        await using var harness = await SourceHarness.StartAsync(_server, configure: o => o.MaxWatchEventBytes = Cap);
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080") && _server.OpenWatches == 1, s_wait, "listed and watching");
        var lastSeen = _server.ResourceVersion;

        var before = GC.GetTotalAllocatedBytes(precise: true);
        _server.SendOversizedEvent(Oversized);
        await Eventually.TrueAsync(() => harness.Observer.Errors.Count > 0, s_wait, "the oversized event is reported");
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        output.WriteLine($"oversized event: {allocated >> 10} KiB allocated for a {Oversized >> 20} MiB line under a {Cap >> 20} MiB cap");
        var error = harness.Observer.Errors[0];
        Assert.Contains(Authority, error.Message, StringComparison.Ordinal);
        Assert.Contains("watch event is larger than the limit of 1048576 bytes", error.Message, StringComparison.Ordinal);
        Assert.Contains("MaxWatchEventBytes", error.Message, StringComparison.Ordinal);
        Assert.True(allocated < 16 * Cap, $"reading a {Oversized >> 20} MiB event under a {Cap >> 20} MiB cap allocated {allocated >> 10} KiB");
        Assert.True(harness.Observer.Has("10.0.0.1:8080"), "the last good set stays in force");
        await Eventually.TrueAsync(() => Count("WATCH") == 2 && _server.OpenWatches == 1, s_wait, "the source watches again");
        Assert.Contains("resourceVersion=" + lastSeen + "&", _server.Requests.Last(r => r.StartsWith("WATCH", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Equal(1, Count("LIST"));
        await AssertRecoversAsync(harness);
        Assert.Equal(0, protobuf ? _server.JsonResponses : _server.ProtobufResponses);
    }
}

/// <summary>Tests that measure process-wide allocated bytes run alone, so other tests' allocations do not count.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AllocationCollection
{
    public const string Name = "Allocation";
}
