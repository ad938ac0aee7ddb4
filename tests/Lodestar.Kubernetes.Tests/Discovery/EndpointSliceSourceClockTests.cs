using Lodestar.Kubernetes.Api.Internal;
using Lodestar.Kubernetes.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Kubernetes;

namespace Lodestar.Kubernetes.Tests.Discovery;

/// <summary>
/// The source's protocol on a recording clock: every delay, deadline and stall bound is a timer the test sees with its
/// due time and fires by advancing the clock, so schedules are asserted exactly and nothing waits on wall-clock time.
/// </summary>
public sealed class EndpointSliceSourceClockTests : IAsyncLifetime
{
    private static readonly TimeSpan s_wait = SourceHarness.Wait;
    private static readonly TimeSpan s_requestDeadline = KubernetesApiClient.RequestTimeout;
    private FakeKubernetesApiServer _server = null!;

    public async Task InitializeAsync() => _server = await FakeKubernetesApiServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static FakeEndpointSlice Slice(string name, params string[] addresses)
        => FakeEndpointSlice.Create("shop", name, "orders", 8080, addresses.Select(a => FakeEndpoint.ReadyAt(a)).ToArray());

    private string[] Watches => _server.Requests.Where(r => r.StartsWith("WATCH", StringComparison.Ordinal)).ToArray();

    private static Task WaitForBookmarkAsync(SourceHarness harness, int count)
        => Eventually.TrueAsync(() => harness.Logs.Entries.Count(e => e.EventId.Name == "Bookmark") >= count, s_wait, "the client has read the bookmark");

    private int Count(string prefix) => _server.Requests.Count(r => r.StartsWith(prefix, StringComparison.Ordinal));

    /// <summary>
    /// Starts a source on a recording clock and waits until it lists (one 30 s request deadline) and watches (one stall
    /// timer). <paramref name="alone"/> runs it without a shared namespace watch. Shared, the schedules are the same: a
    /// member follows the shared loop's backoff and arms no timer of its own.
    /// </summary>
    private async Task<(SourceHarness Harness, RecordingTimeProvider Clock)> StartWatchingAsync(double random = 0.5, bool alone = false)
    {
        var clock = new RecordingTimeProvider();
        var harness = await SourceHarness.StartAsync(_server, timeProvider: clock, random: () => random, configure: o => o.ShareNamespaceWatches = !alone);
        Assert.Equal(s_requestDeadline, await clock.NextFiniteTimerAsync());
        Assert.Equal(KubernetesSourceOptions.DefaultWatchStallTimeout, await clock.NextFiniteTimerAsync());
        await Eventually.TrueAsync(() => _server.OpenWatches == 1, s_wait, "the source watches");
        return (harness, clock);
    }

    [Fact]
    public async Task RunAsync_StreamCutAfterEvents_RewatchesAtOnceFromTheLastResourceVersion()
    {
        _server.Upsert(Slice("orders-a", "10.0.0.1"));
        var (harness, clock) = await StartWatchingAsync();
        await using var _ = harness;
        _server.Upsert(Slice("orders-b", "10.0.0.2"));
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080", "10.0.0.2:8080"), s_wait, "the ADDED event is applied");
        var lastSeen = _server.ResourceVersion;

        _server.EndWatches(abort: true);

        // The next timer is the new watch's stall bound, not a backoff: a stream that made progress is resumed at once.
        Assert.Equal(KubernetesSourceOptions.DefaultWatchStallTimeout, await clock.NextFiniteTimerAsync());
        await Eventually.TrueAsync(() => Watches.Length == 2 && _server.OpenWatches == 1, s_wait, "the source watches again");
        Assert.Contains("resourceVersion=" + lastSeen + "&", Watches[1], StringComparison.Ordinal);
        Assert.Equal(1, Count("LIST"));
        Assert.Empty(harness.Observer.Errors);
        _server.Upsert(Slice("orders-c", "10.0.0.3"));
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"), s_wait, "events flow on the new watch");
    }

    [Theory]
    [InlineData(ExpiredWatchAnswer.HttpGone, true)]
    [InlineData(ExpiredWatchAnswer.ErrorEvent, true)]
    [InlineData(ExpiredWatchAnswer.HttpGone, false)]
    [InlineData(ExpiredWatchAnswer.ErrorEvent, false)]
    public async Task RunAsync_ResumeAnswered410_BacksOffOnceThenRelists(ExpiredWatchAnswer answer, bool shared)
    {
        _server.ExpiredWatchAnswer = answer;
        _server.Upsert(Slice("orders-a", "10.0.0.1"));
        var (harness, clock) = await StartWatchingAsync(random: 0.5, alone: !shared);
        await using var _ = harness;
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080"), s_wait, "initial list");

        // After a bookmark (progress) the stream goes silent; the history is compacted behind the client's back, then
        // the connection drops: its resume point is gone.
        _server.SendBookmark();
        await WaitForBookmarkAsync(harness, 1);
        _server.StallWatches();
        _server.Upsert(Slice("orders-b", "10.0.0.2"));
        _server.Delete("shop", "orders-a");
        _server.Compact();
        _server.EndWatches(abort: true);

        // The re-watch (stall timer) meets 410 at once: the loop waits half of 800 ms (jitter fixed at 0.5), then lists.
        Assert.Equal(KubernetesSourceOptions.DefaultWatchStallTimeout, await clock.NextFiniteTimerAsync());
        var backoff = await clock.NextFiniteTimerAsync();
        Assert.Equal(TimeSpan.FromMilliseconds(400), backoff);
        Assert.Equal(1, Count("LIST"));
        clock.Advance(backoff);

        Assert.Equal(s_requestDeadline, await clock.NextFiniteTimerAsync());
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.2:8080") && _server.OpenWatches == 1, s_wait, "the re-list catches up and a new watch opens");
        Assert.Equal(2, Count("LIST"));
        Assert.Contains("resourceVersion=" + _server.ResourceVersion + "&", Watches[^1], StringComparison.Ordinal);
        Assert.Empty(harness.Observer.Errors);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task RunAsync_ApiServerKeepsFailing_BacksOffOnClientGosScheduleAndReportsEachFailure(bool shared)
    {
        // Shared, the member arms no backoff of its own: the only timers are the shared loop's, so it follows the
        // shared watch as soon as that recovers instead of sleeping a second backoff.
        _server.Upsert(Slice("orders-a", "10.0.0.1"));
        _server.Unavailable = true;
        var clock = new RecordingTimeProvider();
        await using var harness = await SourceHarness.StartAsync(_server, timeProvider: clock, random: () => 1.0, configure: o => o.ShareNamespaceWatches = shared);

        // Each attempt arms its request deadline, fails with 503, then arms the backoff delay: read them in pairs.
        var schedule = new List<double>();
        for (var i = 0; i < 8; i++)
        {
            Assert.Equal(s_requestDeadline, await clock.NextFiniteTimerAsync());
            var delay = await clock.NextFiniteTimerAsync();
            schedule.Add(delay.TotalMilliseconds);
            clock.Advance(delay);
        }

        Assert.Equal([800, 1600, 3200, 6400, 12800, 25600, 30000, 30000], schedule);
        Assert.Equal(s_requestDeadline, await clock.NextFiniteTimerAsync());
        await Eventually.TrueAsync(() => harness.Observer.Errors.Count == 9, s_wait, "every failed list is reported");
        Assert.All(harness.Observer.Errors, e => Assert.Contains("503", e.Message, StringComparison.Ordinal));
        Assert.All(harness.Observer.Errors, e => Assert.Contains(_server.Url.GetLeftPart(UriPartial.Authority), e.Message, StringComparison.Ordinal));
        Assert.All(harness.Observer.Errors, e => Assert.Contains("service 'orders' in namespace 'shop'", e.Message, StringComparison.Ordinal));
        Assert.Null(harness.Observer.Latest);

        // The server recovers: the next attempt lists and watches.
        _server.Unavailable = false;
        var ninth = await clock.NextFiniteTimerAsync();
        Assert.Equal(30000, ninth.TotalMilliseconds);
        clock.Advance(ninth);
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080") && _server.OpenWatches == 1, s_wait, "the source recovers");
    }

    [Fact]
    public async Task RunAsync_StreamGoesSilent_EndedAfterTheStallBoundAndResumedFromTheBookmark()
    {
        _server.Upsert(Slice("orders-a", "10.0.0.1"));
        var (harness, clock) = await StartWatchingAsync();
        await using var _ = harness;

        // Other services move the resourceVersion; a bookmark carries it to this watch, then the stream goes silent.
        _server.Upsert(FakeEndpointSlice.Create("shop", "payments-1", "payments", 8080, FakeEndpoint.ReadyAt("10.9.0.1")));
        var bookmark = _server.ResourceVersion;
        _server.SendBookmark();
        await WaitForBookmarkAsync(harness, 1);
        _server.StallWatches();
        clock.Advance(KubernetesSourceOptions.DefaultWatchStallTimeout - TimeSpan.FromSeconds(1));
        Assert.Single(Watches);

        clock.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal(KubernetesSourceOptions.DefaultWatchStallTimeout, await clock.NextFiniteTimerAsync());
        await Eventually.TrueAsync(() => Watches.Length == 2, s_wait, "a new watch after the stall");
        Assert.Contains("resourceVersion=" + bookmark + "&", Watches[1], StringComparison.Ordinal);
        Assert.Equal(1, Count("LIST"));

        // Shared, the report reaches the service's own loop as a message, which it may read after the new request.
        await Eventually.TrueAsync(() => harness.Observer.Errors.Count > 0, s_wait, "the problem is reported");
        var error = Assert.Single(harness.Observer.Errors);
        Assert.Contains("sent nothing for 150 s", error.Message, StringComparison.Ordinal);
        Assert.Contains(_server.Url.GetLeftPart(UriPartial.Authority), error.Message, StringComparison.Ordinal);
        Assert.True(harness.Observer.Has("10.0.0.1:8080"), "the last good set stays in force");
    }
}
