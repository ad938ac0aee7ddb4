using Lodestar.Etcd.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Etcd;

namespace Lodestar.Etcd.Tests.Discovery;

/// <summary>The source's loop on a recording clock: the exact delays it waits, and where each watch resumes.</summary>
public sealed class EtcdEndpointSourceScheduleTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private static string Go(int port) => $"{{\"Op\":0,\"Addr\":\"127.0.0.1:{port}\",\"Metadata\":null}}";

    [Fact]
    public async Task RunAsync_EtcdUnreachable_BacksOffOnTheExactJitteredSchedule()
    {
        // Arrange: nothing listens; the backoff starts at 100 ms, doubles, and is capped at 1 s; the jitter draws are scripted
        // (the retry after the last one may fail again before the rig stops: it draws 1.0).
        var clock = new RecordingTimeProvider();
        var draws = new Queue<double>([1.0, 0.5, 1.0, 1.0, 1.0, 0.25, 1.0]);
        var dead = $"http://127.0.0.1:{LoopbackPorts.Free(1)[0]}";
        await using var rig = SourceRig.Create(dead, clock, random: () => draws.TryDequeue(out var draw) ? draw : 1.0).Start();
        TimeSpan[] expected = [.. new[] { 100, 100, 400, 800, 1000, 250, 1000 }.Select(ms => TimeSpan.FromMilliseconds(ms))];

        // Act + Assert: each failure is reported, then exactly one delay is armed; advancing past it retries the range.
        for (var i = 0; i < expected.Length; i++)
        {
            var due = await clock.NextFiniteTimerAsync();
            Assert.Equal(expected[i], due);
            Assert.Equal(i + 1, rig.Observer.Errors.Count);
            Assert.False(clock.HasUnreadTimer);
            clock.Advance(due);
        }

        Assert.All(rig.Observer.Errors, e => Assert.Contains(dead, e.Message, StringComparison.Ordinal));
        Assert.All(rig.Observer.Errors, e => Assert.Contains("prefix 'orders/'", e.Message, StringComparison.Ordinal));
        Assert.Null(rig.Observer.Current);
    }

    [Fact]
    public async Task RunAsync_WatchCut_WaitsFirstBackoffThenResumesAfterLastEventWithoutReplay()
    {
        // Arrange
        await using var fake = await FakeEtcdGateway.StartAsync();
        fake.Put("orders/a", Go(7001));
        var clock = new RecordingTimeProvider();
        await using var rig = SourceRig.Create(fake.Url, clock, random: () => 1.0).Start();
        var progressTimeout = rig.Options.WatchProgressTimeout;
        Assert.Equal(progressTimeout, await clock.NextFiniteTimerAsync());
        await Eventually.TrueAsync(() => rig.Observer.Addresses.SequenceEqual(["127.0.0.1:7001"]), s_wait, "the range");
        var b = fake.Put("orders/b", Go(7002));
        await Eventually.TrueAsync(() => rig.Observer.Addresses.Count == 2, s_wait, "the first watch delivers b");

        // Act: the stream is reset mid-watch.
        fake.CutWatches();
        var backoff = await clock.NextFiniteTimerAsync();
        var errorsDuringBackoff = rig.Observer.Errors.Count;
        var watchesDuringBackoff = fake.WatchRequests.Count;
        clock.Advance(backoff);
        Assert.Equal(progressTimeout, await clock.NextFiniteTimerAsync());
        var c = fake.Put("orders/c", Go(7003));
        await Eventually.TrueAsync(() => rig.Observer.Addresses.Count == 3, s_wait, "the second watch delivers c");

        // Assert: first failure in a row waits the first delay; the watch resumed right after b, so b was not sent again.
        Assert.Equal(TimeSpan.FromMilliseconds(100), backoff);
        Assert.Equal(1, errorsDuringBackoff);
        Assert.Equal(1, watchesDuringBackoff);
        Assert.Contains(fake.Url, rig.Observer.Errors.Single().Message, StringComparison.Ordinal);
        // The range read revision b - 1, so the first watch started at b; the second one right after it.
        Assert.Equal([b, b + 1], fake.WatchRequests.Select(w => w.StartRevision));
        Assert.Equal(3, rig.Observer.Sets.Count);
        Assert.True(c > b);
        Assert.All(fake.WatchRequests, w => Assert.True(w.ProgressNotify));
    }

    [Fact]
    public async Task RunAsync_ProgressNotification_KeepsQuietWatchAliveUntilItStaysSilentPastTheTimeout()
    {
        // Arrange: a 10 s progress timeout on a recording clock.
        await using var fake = await FakeEtcdGateway.StartAsync();
        fake.Put("orders/a", Go(7001));
        var clock = new RecordingTimeProvider();
        await using var rig = SourceRig.Create(fake.Url, clock, o => o.WatchProgressTimeout = TimeSpan.FromSeconds(10)).Start();
        Assert.Equal(TimeSpan.FromSeconds(10), await clock.NextFiniteTimerAsync());
        await Eventually.TrueAsync(() => rig.Observer.Current is { Count: 1 } && fake.OpenWatches == 1, s_wait, "the range, then the watch");

        // Act 1: 8 s in, a progress notification; 8 s later (16 s after the watch opened) the watch must still be the first.
        clock.Advance(TimeSpan.FromSeconds(8));
        fake.SendProgress();
        await Eventually.TrueAsync(() => rig.Logs.Entries.Any(e => e.EventId.Name == "EtcdWatchProgress"), s_wait, "the notification is read");
        clock.Advance(TimeSpan.FromSeconds(8));
        var b = fake.Put("orders/b", Go(7002));
        await Eventually.TrueAsync(() => rig.Observer.Addresses.Count == 2, s_wait, "b arrives");
        var watchesBeforeSilence = fake.WatchRequests.Count;
        var errorsBeforeSilence = rig.Observer.Errors.Count;

        // Act 2: then nothing for 11 s.
        clock.Advance(TimeSpan.FromSeconds(11));
        await Eventually.TrueAsync(() => fake.WatchRequests.Count == 2, s_wait, "the stalled watch is replaced");

        // Assert
        Assert.Equal(1, watchesBeforeSilence);
        Assert.Equal(0, errorsBeforeSilence);
        var stalled = Assert.Single(rig.Observer.Errors);
        Assert.Contains(fake.Url, stalled.Message, StringComparison.Ordinal);
        Assert.Contains("WatchProgressTimeout", stalled.Message, StringComparison.Ordinal);
        Assert.Contains("prefix 'orders/'", stalled.Message, StringComparison.Ordinal);
        Assert.Equal(b + 1, fake.WatchRequests.Last().StartRevision);
        Assert.Equal(2, rig.Observer.Addresses.Count);
    }
}
