using System.Diagnostics.Metrics;
using Lodestar.Diagnostics.Internal;
using Lodestar.Resilience.Hedging.Internal;
using Lodestar.Resilience.Retry.Internal;
using Lodestar.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Tests.Resilience;

public sealed class HedgeRoundTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task WaitAsync_FirstCompletesBeforeTheDelay_True()
    {
        // Arrange
        var time = new FakeTimeProvider();
        using var round = new HedgeRound(time);
        round.Start(CancellationToken.None);
        var first = new TaskCompletionSource<HttpResponseMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK);

        // Act
        var wait = round.WaitAsync(first.Task, TimeSpan.FromMilliseconds(100));
        time.Advance(TimeSpan.FromMilliseconds(99));
        var endedEarly = wait.IsCompleted;
        first.SetResult(response);
        var firstCompleted = await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(5));

        // Assert
        Assert.False(endedEarly);
        Assert.True(firstCompleted);
    }

    [Fact]
    public async Task WaitAsync_DelayPassesFirst_FalseAndTheFirstAttemptsLateAnswerEndsNoWaitAgain()
    {
        // Arrange: the first attempt's continuations run inline, so a second completion of the wait would throw here.
        var time = new FakeTimeProvider();
        using var round = new HedgeRound(time);
        round.Start(CancellationToken.None);
        var first = new TaskCompletionSource<HttpResponseMessage>();
        using var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK);

        // Act
        var wait = round.WaitAsync(first.Task, TimeSpan.FromMilliseconds(100));
        time.Advance(TimeSpan.FromMilliseconds(100));
        var firstCompleted = await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        var late = Record.Exception(() => first.SetResult(response));

        // Assert
        Assert.False(firstCompleted);
        Assert.Null(late);
    }

    [Fact]
    public async Task WaitAsync_SubMillisecondDelay_EndsAtTheNextWholeMillisecond()
    {
        // Arrange: 300 µs, which a timer would round down to firing at once.
        var time = new FakeTimeProvider();
        using var round = new HedgeRound(time);
        round.Start(CancellationToken.None);
        var first = new TaskCompletionSource<HttpResponseMessage>();

        // Act
        var wait = round.WaitAsync(first.Task, TimeSpan.FromTicks(3_000));
        time.Advance(TimeSpan.FromTicks(2_999));
        var endedEarly = wait.IsCompleted;
        time.Advance(TimeSpan.FromTicks(10_000 - 2_999));
        var firstCompleted = await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(5));

        // Assert
        Assert.False(endedEarly);
        Assert.False(firstCompleted);
    }

    [Fact]
    public async Task Reset_AfterAWin_NextWaitEndsAfterItsOwnDelayNotTheEarlierOne()
    {
        // Arrange: a first request answered 60 ms into a 100 ms delay; the round then serves a second request.
        var time = new FakeTimeProvider();
        using var round = new HedgeRound(time);
        round.Start(CancellationToken.None);
        var early = new TaskCompletionSource<HttpResponseMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK);
        var firstWait = round.WaitAsync(early.Task, TimeSpan.FromMilliseconds(100));
        time.Advance(TimeSpan.FromMilliseconds(60));
        early.SetResult(response);
        Assert.True(await firstWait.AsTask().WaitAsync(TimeSpan.FromSeconds(5)));
        round.Reset();

        // Act
        round.Start(CancellationToken.None);
        var slow = new TaskCompletionSource<HttpResponseMessage>();
        var secondWait = round.WaitAsync(slow.Task, TimeSpan.FromMilliseconds(100));
        time.Advance(TimeSpan.FromMilliseconds(40));
        var endedAtTheEarlierDue = secondWait.IsCompleted;
        time.Advance(TimeSpan.FromMilliseconds(59));
        var endedEarly = secondWait.IsCompleted;
        time.Advance(TimeSpan.FromMilliseconds(1));
        var firstCompleted = await secondWait.AsTask().WaitAsync(TimeSpan.FromSeconds(5));

        // Assert
        Assert.False(endedAtTheEarlierDue);
        Assert.False(endedEarly);
        Assert.False(firstCompleted);
    }

    [Fact]
    public void Start_CallerCancels_AttemptsTokenCancelled_AndResetGivesTheNextRequestAFreshToken()
    {
        // Arrange
        using var round = new HedgeRound(new FakeTimeProvider());
        using var caller = new CancellationTokenSource();
        round.Start(caller.Token);

        // Act
        caller.Cancel();
        var cancelled = round.Token.IsCancellationRequested;
        round.Reset();
        round.Start(CancellationToken.None);

        // Assert
        Assert.True(cancelled);
        Assert.False(round.Token.IsCancellationRequested);
    }

    [Fact]
    public void Reset_CallerCancelsAfterTheRequest_NextRequestsTokenUntouched()
    {
        // Arrange: the caller's source outlives the request it was linked for.
        using var round = new HedgeRound(new FakeTimeProvider());
        using var caller = new CancellationTokenSource();
        round.Start(caller.Token);
        round.Reset();
        round.Start(CancellationToken.None);

        // Act
        caller.Cancel();

        // Assert
        Assert.False(round.Token.IsCancellationRequested);
    }

    [Fact]
    public async Task WaitAsync_SystemClock_DelayPassesFirst_TheHedgingClockEndsTheWait()
    {
        // Arrange: on the system clock the deadline goes to the process's hedging clock, not to a timer of the round.
        using var round = Started(new HedgeRound(TimeProvider.System));
        var first = new TaskCompletionSource<HttpResponseMessage>();

        // Act
        var firstCompleted = await round.WaitAsync(first.Task, TimeSpan.FromMilliseconds(1)).AsTask().WaitAsync(s_wait);

        // Assert
        Assert.False(firstCompleted);
    }

    [Fact]
    public async Task WaitAsync_SystemClock_EarlierDeadlineFiledWhileTheClockSleepsForALaterOne_EndsOnTime()
    {
        // Arrange: a deadline an hour away, so the clock's thread (if nothing else is due) sleeps until then.
        using var later = Started(new HedgeRound(TimeProvider.System));
        var never = new TaskCompletionSource<HttpResponseMessage>();
        _ = later.WaitAsync(never.Task, TimeSpan.FromHours(1));
        using var round = Started(new HedgeRound(TimeProvider.System));

        // Act: the earlier deadline wakes the clock.
        var firstCompleted = await round.WaitAsync(never.Task, TimeSpan.FromMilliseconds(1)).AsTask().WaitAsync(s_wait);

        // Assert
        Assert.False(firstCompleted);
    }

    [Fact]
    public async Task Reset_SystemClock_TheWonWaitsDeadlineDoesNotEndTheNextWait()
    {
        // Arrange: a request answered at once within a 1 s delay; its deadline stays filed with the clock.
        using var round = Started(new HedgeRound(TimeProvider.System));
        var early = new TaskCompletionSource<HttpResponseMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK);
        var firstWait = round.WaitAsync(early.Task, TimeSpan.FromSeconds(1));
        early.SetResult(response);
        Assert.True(await firstWait.AsTask().WaitAsync(s_wait));
        round.Reset();

        // Act: the round serves a request an hour's delay long; another round's deadline, filed after the first one's
        // and so due after it, tells when the clock has passed the first deadline.
        round.Start(CancellationToken.None);
        var never = new TaskCompletionSource<HttpResponseMessage>();
        var secondWait = round.WaitAsync(never.Task, TimeSpan.FromHours(1));
        using var witness = Started(new HedgeRound(TimeProvider.System));
        Assert.False(await witness.WaitAsync(never.Task, TimeSpan.FromSeconds(1)).AsTask().WaitAsync(s_wait));

        // Assert
        Assert.False(secondWait.IsCompleted);
    }

    [Fact]
    public async Task HedgeClock_ManyWaitsEndedWithinALongDelay_DropsTheirDeadlinesAndStillEndsThePendingOne()
    {
        // Arrange: a clock of its own that drops ended waits' deadlines from 16 on; one wait pending a second.
        var clock = new HedgeClock(minCompactAt: 16);
        using var pending = Started(new HedgeRound(TimeProvider.System, clock));
        var never = new TaskCompletionSource<HttpResponseMessage>();
        var pendingWait = pending.WaitAsync(never.Task, TimeSpan.FromSeconds(1));
        using var round = new HedgeRound(TimeProvider.System, clock);
        using var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK);

        // Act: 200 requests answered at once within an hour's delay, each leaving its deadline behind.
        for (var i = 0; i < 200; i++)
        {
            round.Start(CancellationToken.None);
            var answered = new TaskCompletionSource<HttpResponseMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
            var wait = round.WaitAsync(answered.Task, TimeSpan.FromHours(1));
            answered.SetResult(response);
            Assert.True(await wait.AsTask().WaitAsync(s_wait));
            round.Reset();
        }

        // Assert: the heap stays bounded by the floor, and the pending wait still ends at its deadline.
        await Eventually.TrueAsync(() => clock.Pending < 16, s_wait, "the ended waits' deadlines are dropped");
        Assert.False(await pendingWait.AsTask().WaitAsync(s_wait));
    }

    [Fact]
    public async Task HedgeClock_DeadlinesFiledFromManyThreadsAtOnce_EveryWaitEndsAtItsDeadline()
    {
        // Arrange: a clock of its own; eight threads each file 100 waits of a millisecond whose first attempt never
        // answers, so every deadline is filed while others are being taken and the clock goes to sleep between them.
        var clock = new HedgeClock();
        var never = new TaskCompletionSource<HttpResponseMessage>();

        // Act
        var all = (await AtOnce.RunAsync(8, () =>
        {
            var waits = new List<(HedgeRound Round, Task<bool> Wait)>();
            for (var i = 0; i < 100; i++)
            {
                var round = Started(new HedgeRound(TimeProvider.System, clock));
                waits.Add((round, round.WaitAsync(never.Task, TimeSpan.FromMilliseconds(1)).AsTask()));
            }

            return waits;
        })).SelectMany(waits => waits).ToArray();
        var ended = await Task.WhenAll(all.Select(w => w.Wait)).WaitAsync(s_wait);

        // Assert: all 800 ended by their deadline (not by a first attempt), and none is left with the clock.
        Assert.Equal(800, ended.Length);
        Assert.All(ended, firstCompleted => Assert.False(firstCompleted));
        await Eventually.TrueAsync(() => clock.Pending == 0, s_wait, "every passed deadline leaves the clock");
        foreach (var (round, _) in all)
        {
            round.Dispose();
        }
    }

    [Fact]
    public async Task HedgeClock_ADeadlineFiledAfterAnotherHasPassed_EndsThePassedOneWithoutTheClocksThread()
    {
        // Arrange: a clock on a fake time, which has no thread, so only requests filing deadlines can end them; a wait of
        // a millisecond whose first attempt never answers.
        var time = new FakeTimeProvider();
        var clock = new HedgeClock(timeProvider: time);
        var never = new TaskCompletionSource<HttpResponseMessage>();
        using var passing = Started(new HedgeRound(time, clock));
        var passingWait = passing.WaitAsync(never.Task, TimeSpan.FromMilliseconds(1)).AsTask();

        // The deadline and the least time between two looks pass, and nothing ends the wait on its own.
        time.Advance(TimeSpan.FromMilliseconds(5));
        Assert.False(passingWait.IsCompleted);

        // Act: another request files its deadline, an hour away.
        using var later = Started(new HedgeRound(time, clock));
        var laterWait = later.WaitAsync(never.Task, TimeSpan.FromHours(1)).AsTask();

        // Assert: the passed deadline ended its wait (not its first attempt); the new one waits on.
        Assert.False(await passingWait.WaitAsync(s_wait));
        Assert.False(laterWait.IsCompleted);
        Assert.Equal(1, clock.Pending);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task WaitAsync_DelayPassesWithTheBudgetRefusingAHedge_TheFirstAttemptEndsTheWaitAndTheRefusalIsCounted(bool onTheClock)
    {
        // Arrange: a budget that has earned no retry (no request recorded, no reserve), on a round's timer or on a clock
        // without its thread (a later filing then looks at the passed deadline).
        var time = new FakeTimeProvider();
        await using var counted = CounterListener.Create();
        var clock = onTheClock ? new HedgeClock(timeProvider: time) : null;
        using var round = Started(new HedgeRound(time, clock));
        round.Admit(new RetryBudget(time, TimeSpan.FromSeconds(10), 0.2, 0), 0.02, counted.Metrics, "orders");
        var first = new TaskCompletionSource<HttpResponseMessage>();
        using var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK);

        // Act: the delay passes (and, on the clock, another request files a deadline), then the first attempt answers.
        var wait = round.WaitAsync(first.Task, TimeSpan.FromMilliseconds(2)).AsTask();
        using var other = PassTheDelay(time, clock);
        var endedAtTheDelay = wait.IsCompleted;
        var refusals = counted.Count;
        first.SetResult(response);

        // Assert: not ended by the delay; counted once; the first attempt ended it.
        Assert.False(endedAtTheDelay);
        Assert.Equal(1, refusals);
        Assert.True(await wait.WaitAsync(s_wait));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task WaitAsync_DelayPassesWithTheBudgetGivingAHedge_EndsAtTheDelayAndTakesNothing(bool onTheClock)
    {
        // Arrange: a budget whose reserve gives retries; a hedge within the share of 1 in 1.
        var time = new FakeTimeProvider();
        await using var counted = CounterListener.Create();
        var clock = onTheClock ? new HedgeClock(timeProvider: time) : null;
        var budget = new RetryBudget(time, TimeSpan.FromSeconds(10), 0.2, 10);
        budget.OnRequest();
        using var round = Started(new HedgeRound(time, clock));
        round.Admit(budget, 1.0, counted.Metrics, "orders");
        var never = new TaskCompletionSource<HttpResponseMessage>();

        // Act
        var wait = round.WaitAsync(never.Task, TimeSpan.FromMilliseconds(2)).AsTask();
        time.Advance(TimeSpan.FromMilliseconds(5));
        using var other = Started(new HedgeRound(time, clock));
        _ = other.WaitAsync(never.Task, TimeSpan.FromHours(1));

        // Assert: the delay ended the wait; the budget still has the hedge to give (the strategy takes it).
        Assert.False(await wait.WaitAsync(s_wait));
        Assert.Equal(0, counted.Count);
        Assert.True(budget.TryWithdraw(1.0));
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, true)]
    [InlineData(false, false)]
    [InlineData(true, false)]
    public async Task WaitAsync_DelayPassesWithOrWithoutWorkWaitingForAThread_SkipsTheHedgeOnlyWhileWorkWaits(bool onTheClock, bool workWaits)
    {
        // Arrange: a budget with a hedge to give, and a thread pool said to have work waiting for a thread or not.
        var time = new FakeTimeProvider();
        await using var skips = CounterListener.Create("lodestar.client.hedges.skipped");
        var clock = onTheClock ? new HedgeClock(timeProvider: time) : null;
        var budget = new RetryBudget(time, TimeSpan.FromSeconds(10), 0.2, 10);
        budget.OnRequest();
        var looks = 0;
        using var round = Started(new HedgeRound(time, clock));
        round.Admit(budget, 1.0, skips.Metrics, "orders", () =>
        {
            looks++;
            return workWaits;
        });
        var first = new TaskCompletionSource<HttpResponseMessage>();
        using var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK);

        // Act: the delay passes (and, on the clock, another request files a deadline), then the first attempt answers.
        var wait = round.WaitAsync(first.Task, TimeSpan.FromMilliseconds(2)).AsTask();
        var lookedBeforeTheDelay = looks;
        using var other = PassTheDelay(time, clock);
        var endedAtTheDelay = wait.IsCompleted;
        var skipped = skips.Count;
        first.SetResult(response);

        // Assert: asked once, when the delay passed; while work waits the hedge is skipped and counted, the budget keeps
        // its hedge and the first attempt ends the wait (true); otherwise the delay ends it (false), with nothing counted.
        // (A wait the delay ends completes on the thread pool, so only the awaited result tells who ended it.)
        Assert.Equal(0, lookedBeforeTheDelay);
        Assert.Equal(1, looks);
        Assert.False(workWaits && endedAtTheDelay);
        Assert.Equal(workWaits ? 1 : 0, skipped);
        Assert.Equal(workWaits, await wait.WaitAsync(s_wait));
        Assert.True(budget.TryWithdraw(1.0));
    }

    /// <summary>
    /// Moves <paramref name="time"/> past a 2 ms delay; on <paramref name="clock"/> (which has no thread) another request
    /// then files a deadline, which looks at the passed one. Returns that request's round, still waiting.
    /// </summary>
    private static HedgeRound PassTheDelay(FakeTimeProvider time, HedgeClock? clock)
    {
        time.Advance(TimeSpan.FromMilliseconds(5));
        var other = Started(new HedgeRound(time, clock));
        _ = other.WaitAsync(new TaskCompletionSource<HttpResponseMessage>().Task, TimeSpan.FromHours(1));
        return other;
    }

    /// <summary>Links <paramref name="round"/> to no caller's token, as a request does before its first wait.</summary>
    private static HedgeRound Started(HedgeRound round)
    {
        round.Start(CancellationToken.None);
        return round;
    }

    /// <summary>Metrics of their own, and one counter's measurements on them (by default the budget refusals).</summary>
    private sealed class CounterListener : IAsyncDisposable
    {
        private readonly ServiceProvider _services;
        private readonly MeterListener _listener = new();
        private int _count;

        private CounterListener(ServiceProvider services, string counter)
        {
            _services = services;
            var meters = services.GetRequiredService<IMeterFactory>();
            Metrics = new LodestarMetrics(meters);
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Name == counter && ReferenceEquals(instrument.Meter.Scope, meters))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref _count, (int)value));
            _listener.Start();
        }

        public LodestarMetrics Metrics { get; }

        public int Count => Volatile.Read(ref _count);

        public static CounterListener Create(string counter = "lodestar.client.retry_budget.exhausted")
            => new(new ServiceCollection().AddMetrics().BuildServiceProvider(), counter);

        public async ValueTask DisposeAsync()
        {
            _listener.Dispose();
            await _services.DisposeAsync();
        }
    }
}
