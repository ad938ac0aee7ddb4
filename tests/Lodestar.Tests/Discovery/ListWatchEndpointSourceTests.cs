using System.Threading.Channels;
using Lodestar.Discovery;
using Lodestar.Discovery.Internal;
using Lodestar.Endpoints;
using Lodestar.Testing;
using Microsoft.Extensions.Logging;

namespace Lodestar.Tests.Discovery;

public sealed class ListWatchEndpointSourceTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Run_ListFails_BacksOffOnTheDocumentedScheduleAndCountsEachRetry()
    {
        var clock = new RecordingTimeProvider();
        var source = new ScriptedSource(clock, random: () => 0.5);
        var observer = new RecordingObserver();
        using var cts = new CancellationTokenSource();
        for (var i = 0; i < 4; i++)
        {
            source.Lists.Enqueue(static (_, _) => throw new InvalidOperationException("registry at http://127.0.0.1:1 refused the connection"));
        }

        source.Lists.Enqueue(static (context, _) =>
        {
            context.Publish([DiscoveredEndpoint.Create("10.0.0.1", 80)]);
            return Task.FromResult(7);
        });
        source.Watches.Enqueue(static (_, _, token) => Task.Delay(Timeout.Infinite, token).ContinueWith(static _ => WatchOutcome.Continue, TaskScheduler.Default));
        var run = source.RunAsync(observer, cts.Token);

        // Half of 800 ms, 1.6 s, 3.2 s, 6.4 s: full jitter with the random source fixed at 0.5.
        var schedule = new List<TimeSpan>();
        for (var i = 0; i < 4; i++)
        {
            schedule.Add(await clock.NextFiniteTimerAsync());
            clock.Advance(schedule[^1]);
        }

        var call = await source.NextCallAsync();
        while (call.Kind != "watch")
        {
            call = await source.NextCallAsync();
        }

        Assert.Equal([400, 800, 1600, 3200], schedule.Select(d => d.TotalMilliseconds));
        Assert.Equal(7, call.Cursor);
        Assert.Equal(4, observer.Errors.Count);
        Assert.Equal(4, observer.Reconnects);
        Assert.Single(observer.Snapshots);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Run_FailuresInARow_GrowUpToMaxDelayAndStayThere()
    {
        var clock = new RecordingTimeProvider();
        var source = new ScriptedSource(clock, random: () => 1.0);
        var observer = new RecordingObserver();
        using var cts = new CancellationTokenSource();
        for (var i = 0; i < 9; i++)
        {
            source.Lists.Enqueue(static (_, _) => throw new InvalidOperationException("down"));
        }

        source.Lists.Enqueue(static (_, token) => Task.Delay(Timeout.Infinite, token).ContinueWith(static _ => 0, TaskScheduler.Default));
        var run = source.RunAsync(observer, cts.Token);

        var schedule = new List<double>();
        for (var i = 0; i < 9; i++)
        {
            var due = await clock.NextFiniteTimerAsync();
            schedule.Add(due.TotalMilliseconds);
            clock.Advance(due);
        }

        Assert.Equal([800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000], schedule);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Run_NoFailureForResetAfter_NextFailureStartsTheScheduleOver()
    {
        var clock = new RecordingTimeProvider();
        var source = new ScriptedSource(clock, random: () => 1.0);
        var observer = new RecordingObserver();
        using var cts = new CancellationTokenSource();
        source.Lists.Enqueue(static (_, _) => throw new InvalidOperationException("down"));
        source.Lists.Enqueue(static (_, _) => throw new InvalidOperationException("down"));
        source.Lists.Enqueue(static (_, _) => Task.FromResult(1));
        var watchEnds = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        source.Watches.Enqueue(async (_, _, _) =>
        {
            await watchEnds.Task;
            throw new IOException("connection reset");
        });
        source.Watches.Enqueue(static (_, _, token) => Task.Delay(Timeout.Infinite, token).ContinueWith(static _ => WatchOutcome.Continue, TaskScheduler.Default));
        var run = source.RunAsync(observer, cts.Token);

        var first = await clock.NextFiniteTimerAsync();
        clock.Advance(first);
        var second = await clock.NextFiniteTimerAsync();
        clock.Advance(second);
        while ((await source.NextCallAsync()).Kind != "watch")
        {
        }

        // The watch stays up longer than ResetAfter (2 minutes), then breaks.
        clock.Advance(TimeSpan.FromMinutes(2) + TimeSpan.FromSeconds(1));
        watchEnds.SetResult();
        var afterReset = await clock.NextFiniteTimerAsync();

        Assert.Equal([800, 1600, 800], new[] { first, second, afterReset }.Select(d => d.TotalMilliseconds));
        clock.Advance(afterReset);
        var resumed = await source.NextCallAsync();
        Assert.Equal(("watch", 1), (resumed.Kind, resumed.Cursor));
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Run_StreamEndsAfterProgress_WatchesAgainFromTheLastCursorAtOnceAndCountsOneReconnect()
    {
        var clock = new RecordingTimeProvider();
        var source = new ScriptedSource(clock);
        var observer = new RecordingObserver();
        using var cts = new CancellationTokenSource();
        source.Lists.Enqueue(static (_, _) => Task.FromResult(10));
        source.Watches.Enqueue(static (_, context, _) =>
        {
            context.Publish([DiscoveredEndpoint.Create("10.0.0.2", 80)]);
            context.Advance(12);
            return Task.FromResult(WatchOutcome.Reconnect);
        });
        source.Watches.Enqueue(static (_, _, token) => Task.Delay(Timeout.Infinite, token).ContinueWith(static _ => WatchOutcome.Continue, TaskScheduler.Default));
        var run = source.RunAsync(observer, cts.Token);

        var calls = new[] { await source.NextCallAsync(), await source.NextCallAsync(), await source.NextCallAsync() };

        Assert.Equal([("list", 0), ("watch", 10), ("watch", 12)], calls.Select(c => (c.Kind, c.Cursor)));
        Assert.Equal(1, observer.Reconnects);
        Assert.Empty(observer.Errors);
        Assert.False(clock.HasUnreadTimer);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Run_PollingRounds_ContinueAndRefresh_AreNotReconnects()
    {
        var clock = new RecordingTimeProvider();
        var source = new ScriptedSource(clock);
        var observer = new RecordingObserver();
        using var cts = new CancellationTokenSource();
        source.Lists.Enqueue(static (_, _) => Task.FromResult(1));
        source.Watches.Enqueue(static (_, context, _) =>
        {
            context.Advance(2);
            return Task.FromResult(WatchOutcome.Continue);
        });
        source.Watches.Enqueue(static (_, context, _) =>
        {
            context.KeepAlive();
            return Task.FromResult(WatchOutcome.Refresh);
        });
        source.Lists.Enqueue(static (_, _) => Task.FromResult(5));
        source.Watches.Enqueue(static (_, _, token) => Task.Delay(Timeout.Infinite, token).ContinueWith(static _ => WatchOutcome.Continue, TaskScheduler.Default));
        var run = source.RunAsync(observer, cts.Token);

        var calls = new List<(string, int)>();
        for (var i = 0; i < 5; i++)
        {
            var call = await source.NextCallAsync();
            calls.Add((call.Kind, call.Cursor));
        }

        Assert.Equal([("list", 0), ("watch", 1), ("watch", 2), ("list", 0), ("watch", 5)], calls);
        Assert.Equal(0, observer.Reconnects);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Run_Relist_ListsAgainAndCountsAReconnect_AndAnImmediateRelistIsBackedOffFrom()
    {
        var clock = new RecordingTimeProvider();
        var source = new ScriptedSource(clock, random: () => 0.5);
        var observer = new RecordingObserver();
        using var cts = new CancellationTokenSource();
        source.Lists.Enqueue(static (_, _) => Task.FromResult(100));
        source.Watches.Enqueue(static (_, context, _) =>
        {
            context.Advance(150);
            return Task.FromResult(WatchOutcome.Relist);
        });
        source.Lists.Enqueue(static (_, _) => Task.FromResult(200));
        source.Watches.Enqueue(static (_, _, _) => Task.FromResult(WatchOutcome.Relist));
        source.Lists.Enqueue(static (_, _) => Task.FromResult(300));
        source.Watches.Enqueue(static (_, _, token) => Task.Delay(Timeout.Infinite, token).ContinueWith(static _ => WatchOutcome.Continue, TaskScheduler.Default));
        var run = source.RunAsync(observer, cts.Token);

        var calls = new List<(string, int)>();
        for (var i = 0; i < 4; i++)
        {
            var call = await source.NextCallAsync();
            calls.Add((call.Kind, call.Cursor));
        }

        // The second watch asked to start over without any progress: the loop waits a backoff delay first.
        var delay = await clock.NextFiniteTimerAsync();
        clock.Advance(delay);
        for (var i = 0; i < 2; i++)
        {
            var call = await source.NextCallAsync();
            calls.Add((call.Kind, call.Cursor));
        }

        Assert.Equal([("list", 0), ("watch", 100), ("list", 0), ("watch", 200), ("list", 0), ("watch", 300)], calls);
        Assert.Equal(400, delay.TotalMilliseconds);
        Assert.Equal(2, observer.Reconnects);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Run_WatchFails_ResumesFromTheLastCursorAfterBackoff()
    {
        var clock = new RecordingTimeProvider();
        var source = new ScriptedSource(clock, random: () => 0.5);
        var observer = new RecordingObserver();
        using var cts = new CancellationTokenSource();
        source.Lists.Enqueue(static (_, _) => Task.FromResult(1));
        source.Watches.Enqueue(static (_, context, _) =>
        {
            context.Advance(4);
            throw new IOException("stream cut mid-event");
        });
        source.Watches.Enqueue(static (_, _, token) => Task.Delay(Timeout.Infinite, token).ContinueWith(static _ => WatchOutcome.Continue, TaskScheduler.Default));
        var run = source.RunAsync(observer, cts.Token);

        await source.NextCallAsync();
        await source.NextCallAsync();
        var delay = await clock.NextFiniteTimerAsync();
        clock.Advance(delay);
        var resumed = await source.NextCallAsync();

        Assert.Equal(("watch", 4), (resumed.Kind, resumed.Cursor));
        Assert.Equal("described: stream cut mid-event", Assert.Single(observer.Errors).Message);
        Assert.Equal(1, observer.Reconnects);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Run_SilentStream_IsEndedAfterStallTimeoutAndResumed_KeepAliveReArmsIt()
    {
        var clock = new RecordingTimeProvider();
        var source = new ScriptedSource(clock) { Stall = TimeSpan.FromSeconds(90) };
        var observer = new RecordingObserver();
        using var cts = new CancellationTokenSource();
        var keepAlive = Channel.CreateUnbounded<bool>();
        var kept = Channel.CreateUnbounded<bool>();
        source.Lists.Enqueue(static (_, _) => Task.FromResult(1));
        source.Watches.Enqueue(async (_, context, token) =>
        {
            await keepAlive.Reader.ReadAsync(token);
            context.KeepAlive();
            kept.Writer.TryWrite(true);
            await Task.Delay(Timeout.Infinite, token);
            return WatchOutcome.Continue;
        });
        source.Watches.Enqueue(static (_, _, token) => Task.Delay(Timeout.Infinite, token).ContinueWith(static _ => WatchOutcome.Continue, TaskScheduler.Default));
        var run = source.RunAsync(observer, cts.Token);

        await source.NextCallAsync();
        await source.NextCallAsync();
        Assert.Equal(TimeSpan.FromSeconds(90), await clock.NextFiniteTimerAsync());
        clock.Advance(TimeSpan.FromSeconds(60));
        keepAlive.Writer.TryWrite(true);
        await kept.Reader.ReadAsync();
        clock.Advance(TimeSpan.FromSeconds(60));
        Assert.Empty(observer.Errors);
        clock.Advance(TimeSpan.FromSeconds(30));
        var resumed = await source.NextCallAsync();

        Assert.Equal(("watch", 1), (resumed.Kind, resumed.Cursor));
        Assert.Contains("sent nothing for 90 s", Assert.Single(observer.Errors).Message, StringComparison.Ordinal);
        Assert.Equal(1, observer.Reconnects);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Run_StreamEndsAtOnceWithoutProgress_IsBackedOffFrom()
    {
        var clock = new RecordingTimeProvider();
        var source = new ScriptedSource(clock, random: () => 0.5);
        var observer = new RecordingObserver();
        using var cts = new CancellationTokenSource();
        source.Lists.Enqueue(static (_, _) => Task.FromResult(1));
        source.Watches.Enqueue(static (_, _, _) => Task.FromResult(WatchOutcome.Reconnect));
        source.Watches.Enqueue(static (_, _, token) => Task.Delay(Timeout.Infinite, token).ContinueWith(static _ => WatchOutcome.Continue, TaskScheduler.Default));
        var run = source.RunAsync(observer, cts.Token);

        await source.NextCallAsync();
        await source.NextCallAsync();
        var delay = await clock.NextFiniteTimerAsync();
        clock.Advance(delay);
        var again = await source.NextCallAsync();

        Assert.Equal(400, delay.TotalMilliseconds);
        Assert.Equal(("watch", 1), (again.Kind, again.Cursor));
        Assert.Empty(observer.Errors);
        Assert.Equal(1, observer.Reconnects);
        await cts.CancelAsync();
        await run;
    }

    [Fact]
    public async Task Run_FailureQuotingASecret_LogsAndReportsOnlyTheDescribedError()
    {
        // The raw error quotes what the registry echoed; the source's DescribeError redacts it. Nothing else may reach a log.
        const string Secret = "s3cr3t-token-42";
        var clock = new RecordingTimeProvider();
        using var logs = new CapturingLoggerProvider();
        var source = new ScriptedSource(clock, random: () => 0.5, logger: logs.CreateLogger("source"))
        {
            Describe = static error => new InvalidOperationException(error.Message.Replace(Secret, SecretRedactor.Mask, StringComparison.Ordinal)),
        };
        var observer = new RecordingObserver();
        using var cts = new CancellationTokenSource();
        source.Lists.Enqueue(static (_, _) => throw new InvalidOperationException($"registry answered 401: Authorization: Bearer {Secret}"));
        source.Lists.Enqueue(static (context, _) =>
        {
            context.Publish([DiscoveredEndpoint.Create("10.0.0.1", 80)]);
            return Task.FromResult(1);
        });
        source.Watches.Enqueue(static (_, _, token) => Task.Delay(Timeout.Infinite, token).ContinueWith(static _ => WatchOutcome.Continue, TaskScheduler.Default));
        var run = source.RunAsync(observer, cts.Token);

        clock.Advance(await clock.NextFiniteTimerAsync());
        var call = await source.NextCallAsync();
        while (call.Kind != "watch")
        {
            call = await source.NextCallAsync();
        }

        Assert.Contains(logs.Entries, e => e.EventId.Name == "DiscoveryFailed");
        Assert.DoesNotContain(Secret, logs.AllText, StringComparison.Ordinal);
        Assert.Contains(SecretRedactor.Mask, logs.AllText, StringComparison.Ordinal);
        var error = Assert.Single(observer.Errors);
        Assert.DoesNotContain(Secret, error.ToString(), StringComparison.Ordinal);
        await cts.CancelAsync();
        await run;
    }

    private sealed class ScriptedSource(TimeProvider clock, Func<double>? random = null, ILogger? logger = null)
        : ListWatchEndpointSource<int>("orders", new BackoffOptions(), clock, logger, random)
    {
        private readonly Channel<(string Kind, int Cursor)> _calls = Channel.CreateUnbounded<(string, int)>();

        public Queue<Func<WatchContext<int>, CancellationToken, Task<int>>> Lists { get; } = new();

        public Queue<Func<int, WatchContext<int>, CancellationToken, Task<WatchOutcome>>> Watches { get; } = new();

        public TimeSpan? Stall { get; init; }

        protected override TimeSpan? StallTimeout => Stall;

        public async Task<(string Kind, int Cursor)> NextCallAsync()
        {
            using var cts = new CancellationTokenSource(s_wait);
            return await _calls.Reader.ReadAsync(cts.Token);
        }

        protected override Task<int> ListAsync(WatchContext<int> context, CancellationToken cancellationToken)
        {
            _calls.Writer.TryWrite(("list", 0));
            return Lists.Dequeue()(context, cancellationToken);
        }

        protected override Task<WatchOutcome> WatchAsync(int cursor, WatchContext<int> context, CancellationToken cancellationToken)
        {
            _calls.Writer.TryWrite(("watch", cursor));
            return Watches.Dequeue()(cursor, context, cancellationToken);
        }

        public Func<Exception, Exception>? Describe { get; init; }

        protected override Exception DescribeError(Exception error)
            => Describe?.Invoke(error) ?? (error is TimeoutException ? error : new InvalidOperationException("described: " + error.Message, error));
    }

    private sealed class RecordingObserver : IEndpointObserver, IReconnectObserver
    {
        private int _reconnects;

        public List<IReadOnlyList<DiscoveredEndpoint>> Snapshots { get; } = [];

        public List<Exception> Errors { get; } = [];

        public int Reconnects => Volatile.Read(ref _reconnects);

        public void OnEndpoints(IReadOnlyList<DiscoveredEndpoint> endpoints) => Snapshots.Add(endpoints);

        public void OnError(Exception error) => Errors.Add(error);

        public void OnReconnect() => Interlocked.Increment(ref _reconnects);

        public void OnFailure(Exception error) => Errors.Add(error);

        public void OnProgress()
        {
        }
    }
}
