using Lodestar.Resilience.Internal;

namespace Lodestar.Resilience.Hedging.Internal;

/// <summary>
/// The hedging delay of one request: one <see cref="TimeProvider"/> timer, armed for each hedge and disposed with the
/// request, whose task completes once the delay has passed by the clock's timestamps, never earlier.
/// </summary>
/// <remarks>
/// <para>
/// Timers count whole milliseconds, so each arming is rounded up to the next millisecond (<see cref="ClockDelay.RoundUp"/>):
/// a 0.3 ms delay waits a millisecond instead of firing at once, as a zero timer would. A timer that fires before the
/// delay has passed is re-armed for the rest, so the wait is at least the delay and at most a millisecond more.
/// </para>
/// <para>
/// Compared with a <c>Task.Delay</c> per hedge, the timer leaves the timer queue as soon as the request is over (a
/// request answered within the delay leaves no timer behind), and ending the wait needs no cancellation exception.
/// </para>
/// </remarks>
internal sealed class HedgeTimer : IDisposable
{
    private readonly TimeProvider _timeProvider;
    private readonly ITimer _timer;
    private Arming? _current;

    public HedgeTimer(TimeProvider timeProvider)
    {
        _timeProvider = timeProvider;

        // The callback only completes a task: no ExecutionContext needs to flow into it.
        if (ExecutionContext.IsFlowSuppressed())
        {
            _timer = timeProvider.CreateTimer(static state => ((HedgeTimer)state!).OnTick(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
        else
        {
            using (ExecutionContext.SuppressFlow())
            {
                _timer = timeProvider.CreateTimer(static state => ((HedgeTimer)state!).OnTick(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>Arms the timer for <paramref name="delay"/> from now, replacing any earlier arming.</summary>
    /// <returns>A task that completes once the delay has passed; completed already for zero or less.</returns>
    public Task StartAsync(TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            Volatile.Write(ref _current, null);
            return Task.CompletedTask;
        }

        // One object carries the start, the delay and the task, published with one write, so a tick of an earlier
        // arming that runs now sees either the old arming or the whole new one.
        var arming = new Arming(_timeProvider.GetTimestamp(), delay);
        Volatile.Write(ref _current, arming);
        _timer.Change(ClockDelay.RoundUp(delay), Timeout.InfiniteTimeSpan);
        return arming.Task;
    }

    public void Dispose() => _timer.Dispose();

    private void OnTick()
    {
        var arming = Volatile.Read(ref _current);
        if (arming is null)
        {
            return;
        }

        var remaining = arming.Delay - _timeProvider.GetElapsedTime(arming.StartedAt);
        if (remaining > TimeSpan.Zero)
        {
            // Fired early (coarse timer, or a tick of an earlier arming): wait out the rest.
            _timer.Change(ClockDelay.RoundUp(remaining), Timeout.InfiniteTimeSpan);
            return;
        }

        arming.TrySetResult();
    }

    /// <summary>One arming: its start and delay, and the task it completes (continuations never run on the timer thread).</summary>
    private sealed class Arming(long startedAt, TimeSpan delay) : TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public long StartedAt { get; } = startedAt;

        public TimeSpan Delay { get; } = delay;
    }
}
