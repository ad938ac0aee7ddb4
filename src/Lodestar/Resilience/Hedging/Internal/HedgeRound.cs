using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using Lodestar.Diagnostics.Internal;
using Lodestar.Resilience.Internal;
using Lodestar.Resilience.Retry.Internal;

namespace Lodestar.Resilience.Hedging.Internal;

/// <summary>
/// What a hedged request needs while its first attempt runs: the cancellation source of its attempts (linked to the
/// caller's token), the hedging delay's deadline (on the process's hedging clock, or a timer), and one wait that ends
/// when the first attempt completes or the delay passes, whichever is first. Reused by the next request when the first
/// attempt wins (the common case), so a hedged request that never hedges allocates no source, timer, task or wait of
/// its own.
/// </summary>
/// <remarks>
/// <para>
/// The wait is this object as an <see cref="IValueTaskSource{TResult}"/>: the first attempt's completion and the
/// deadline race for it, and the winner completes the wait. The first attempt is the transport's own task, watched
/// through its awaiter with a cached delegate: nothing is allocated to watch it, and the strategy reads it when it
/// needs to.
/// </para>
/// <para>
/// The delay is rounded up to the next whole millisecond, as timers count (<see cref="HedgeTimer"/>). On the system
/// clock it is then a deadline filed with the process's <see cref="HedgeClock"/>, never taken back: a deadline of a
/// finished wait finds another arming number and does nothing. On any other clock (a test's) it is a
/// <see cref="TimeProvider"/> timer, and a tick before the due timestamp (a coarse timer, or a late tick of a previous
/// request's arming) re-arms for the rest. Either way the wait is at least the rounded delay and at most about a
/// millisecond more (on the system clock, up to 10 ms more if every caller stops while requests come densely enough for
/// the clock to leave its deadlines to them). The wait pending is its arming's number in one <see cref="long"/>,
/// written after the due timestamp, and whatever ends it (the first attempt, the timer, the clock) takes that number
/// back with one compare-and-swap, so a deadline of an earlier arming can never end a later wait. A round whose wait
/// ended with a hedge is never reused: its first attempt may still complete into it.
/// </para>
/// <para>
/// When the delay passes, the wait ends only if the request's retry budget would give the hedge (<see cref="Admit"/>). A
/// hedge it would refuse is counted as refused there, and the wait goes on until the first attempt completes, as an
/// unhedged request's would: the request is not moved to the thread pool, no endpoint is picked for a hedge that cannot be
/// sent, and the round is reused. Such requests are many exactly when they cost most: when every answer slows down
/// (the whole process is busy), the delay estimate lags behind and the budget's share is soon spent.
/// </para>
/// <para>
/// Before the budget, a round admitted with a busy test (<see cref="HedgingOptions.SkipWhenThreadPoolBusy"/>) asks it:
/// when the thread pool has work waiting for a thread as the delay passes, the hedge is skipped the same way and counted
/// as skipped. The process is then its own bottleneck: the first attempt's answer may be among the waiting work, and a
/// hedge would wait behind it and add load where there is none to spare.
/// </para>
/// </remarks>
internal sealed class HedgeRound : IValueTaskSource<bool>, IDisposable
{
    private readonly TimeProvider _timeProvider;
    private readonly HedgeClock? _clock;
    private readonly ITimer? _timer;
    private readonly Action _onFirstCompleted;
    private CancellationTokenSource _attempts = new();
    private CancellationTokenRegistration _caller;
    private ManualResetValueTaskSourceCore<bool> _wait;
    private ConfiguredTaskAwaitable<HttpResponseMessage>.ConfiguredTaskAwaiter _first;
    private long _due;
    private long _armings;

    // The request's retry budget and hedged share, and where a refused hedge is counted; all set together (see Admit).
    private RetryBudget? _budget;
    private double? _hedgeRatio;
    private LodestarMetrics? _metrics;
    private string? _service;
    private Func<bool>? _busy;

    // The number of the arming whose wait is pending; 0 when none is.
    private long _waiting;

    /// <summary>Creates a round on <paramref name="timeProvider"/>: the process's hedging clock for the system's, a timer for any other.</summary>
    public HedgeRound(TimeProvider timeProvider)
        : this(timeProvider, timeProvider == TimeProvider.System ? HedgeClock.System : null)
    {
    }

    /// <summary>Creates a round whose deadlines go to <paramref name="clock"/> (on the clock's time), or to a timer when it is <see langword="null"/>.</summary>
    internal HedgeRound(TimeProvider timeProvider, HedgeClock? clock)
    {
        _timeProvider = timeProvider;
        _onFirstCompleted = OnFirstCompleted;
        if (clock is not null)
        {
            _clock = clock;
            return;
        }

        // The callback only completes a wait: no ExecutionContext needs to flow into it.
        if (ExecutionContext.IsFlowSuppressed())
        {
            _timer = CreateTimer(timeProvider, this);
        }
        else
        {
            using (ExecutionContext.SuppressFlow())
            {
                _timer = CreateTimer(timeProvider, this);
            }
        }
    }

    /// <summary>Gets the token of the request's attempts: cancelled by the caller's token or by <see cref="CancelAsync"/>.</summary>
    public CancellationToken Token => _attempts.Token;

    /// <summary>Links the attempts' token to the caller's for one request.</summary>
    public void Start(CancellationToken cancellationToken)
    {
        if (cancellationToken.CanBeCanceled)
        {
            _caller = cancellationToken.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), _attempts);
        }
    }

    /// <summary>
    /// Gives the request's hedge gate: when the delay passes, the wait ends only if <paramref name="busy"/> (when given)
    /// answers <see langword="false"/> and <paramref name="budget"/> would give a hedge within <paramref name="hedgeRatio"/>;
    /// otherwise the skip or the refusal is counted for <paramref name="service"/> and the first attempt ends the wait.
    /// Without it (a round no request admitted), the delay always ends the wait.
    /// </summary>
    public void Admit(RetryBudget budget, double? hedgeRatio, LodestarMetrics metrics, string service, Func<bool>? busy = null)
    {
        _budget = budget;
        _hedgeRatio = hedgeRatio;
        _metrics = metrics;
        _service = service;
        _busy = busy;
    }

    /// <summary>
    /// Waits until <paramref name="first"/> completes (<see langword="true"/>) or <paramref name="delay"/> passes first
    /// (<see langword="false"/>). Call once per request, with a positive delay and a first attempt not completed yet.
    /// </summary>
    public ValueTask<bool> WaitAsync(Task<HttpResponseMessage> first, TimeSpan delay)
    {
        _wait.Reset();
        var version = _wait.Version;
        _first = first.ConfigureAwait(false).GetAwaiter();
        var rounded = ClockDelay.RoundUp(delay);
        var now = _timeProvider.GetTimestamp();
        var due = now + ToTimestampTicks(rounded);
        var arming = ++_armings;
        Volatile.Write(ref _due, due);
        Volatile.Write(ref _waiting, arming);

        // Watched before the deadline is filed: a first attempt completing before its continuation is registered has
        // it queued to the thread pool instead of run inline, so the window for that is kept as short as it can be.
        _first.UnsafeOnCompleted(_onFirstCompleted);
        if (_clock is { } clock)
        {
            clock.Schedule(this, arming, due, now);
        }
        else
        {
            _timer!.Change(rounded, Timeout.InfiniteTimeSpan);
        }

        return new ValueTask<bool>(this, version);
    }

    /// <summary>Cancels the request's attempts that are still running.</summary>
    public Task CancelAsync() => _attempts.CancelAsync();

    /// <summary>
    /// Readies the round for another request after its first attempt won: the attempt has completed into it, a late tick
    /// finds no wait pending, and no caller callback runs after this.
    /// </summary>
    public void Reset()
    {
        // The clock's deadline stays filed: it finds no wait of its arming pending.
        _timer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        Volatile.Write(ref _waiting, 0);

        // Disposing the registration waits for a caller callback that is running, so none runs after this.
        _caller.Dispose();
        _caller = default;
        if (!_attempts.TryReset())
        {
            _attempts.Dispose();
            _attempts = new CancellationTokenSource();
        }

        _first = default;
    }

    /// <summary>Ends the round for good: a request that hedged, retried or failed.</summary>
    public void Dispose()
    {
        _timer?.Dispose();
        _caller.Dispose();
        _attempts.Dispose();
    }

    bool IValueTaskSource<bool>.GetResult(short token) => _wait.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _wait.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _wait.OnCompleted(continuation, state, token, flags);

    /// <summary>Whether the wait of <paramref name="arming"/> is still pending.</summary>
    internal bool IsWaiting(long arming) => Volatile.Read(ref _waiting) == arming;

    /// <summary>The <see cref="HedgeClock"/> found the deadline of <paramref name="arming"/> passed.</summary>
    /// <remarks>Read before the compare-and-swap: most deadlines find their wait long ended, and a read leaves the round's line shared.</remarks>
    internal void OnDeadline(long arming)
    {
        if (IsWaiting(arming))
        {
            DelayPassed(arming);
        }
    }

    private void OnFirstCompleted() => EndWait(Volatile.Read(ref _waiting), firstCompleted: true);

    private void OnTick()
    {
        var arming = Volatile.Read(ref _waiting);
        if (arming == 0)
        {
            return;
        }

        var remaining = Volatile.Read(ref _due) - _timeProvider.GetTimestamp();
        if (remaining > 0)
        {
            // Early (a coarse timer, or a late tick of an earlier arming): wait out the rest.
            _timer!.Change(ClockDelay.RoundUp(TimeSpan.FromSeconds((double)remaining / _timeProvider.TimestampFrequency)), Timeout.InfiniteTimeSpan);
            return;
        }

        DelayPassed(arming);
    }

    private void DelayPassed(long arming)
    {
        if (_busy is { } busy && busy())
        {
            // Work waits for a thread: the hedge is skipped (see the remarks), counted as a refusal is.
            if (IsWaiting(arming))
            {
                _metrics!.RecordHedgeSkipped(_service!);
            }

            return;
        }

        if (_budget is { } budget && !budget.CanWithdraw(_hedgeRatio))
        {
            // The hedge would be refused: counted, and the first attempt ends the wait (see the remarks). Read after the
            // arming: a round reused meanwhile has another arming, and only a refusal of a pending wait is counted.
            if (IsWaiting(arming))
            {
                _metrics!.RecordRetryBudgetExhausted(_service!);
            }

            return;
        }

        EndWait(arming, firstCompleted: false);
    }

    private void EndWait(long arming, bool firstCompleted)
    {
        if (arming != 0 && Interlocked.CompareExchange(ref _waiting, 0, arming) == arming)
        {
            // The first attempt's completion goes on inline, as an await of it would; the timer's and the clock's never
            // run the request's continuation on their own thread.
            _wait.RunContinuationsAsynchronously = !firstCompleted;
            _wait.SetResult(firstCompleted);
        }
    }

    private static ITimer CreateTimer(TimeProvider timeProvider, HedgeRound round)
        => timeProvider.CreateTimer(static state => ((HedgeRound)state!).OnTick(), round, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);

    private long ToTimestampTicks(TimeSpan delay) => (long)Math.Ceiling(delay.Ticks * (_timeProvider.TimestampFrequency / (double)TimeSpan.TicksPerSecond));
}
