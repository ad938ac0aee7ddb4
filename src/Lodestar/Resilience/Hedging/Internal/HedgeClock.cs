namespace Lodestar.Resilience.Hedging.Internal;

/// <summary>
/// The system clock's hedging deadlines for every <see cref="HedgeRound"/> of the process: one background thread that
/// sleeps until the earliest deadline, ends the waits whose deadline has passed and goes back to sleep.
/// </summary>
/// <remarks>
/// <para>
/// A hedged request whose first attempt is answered within the delay (almost every one) only files its deadline here
/// and never takes it back: the round's arming number tells a deadline of a finished wait from the current one, so
/// answering costs nothing and scheduling costs a heap insertion under a lock held for that alone. A runtime timer per
/// request costs more than its arming: the runtime's timer queue still wakes at the due time of a timer that was
/// stopped, and has a thread-pool thread look at the queue, which with delays of a few milliseconds means waking pool
/// threads hundreds of times a second for nothing. This thread wakes as often, but only itself.
/// </para>
/// <para>
/// The thread sleeps until the earliest deadline and is woken early only when a deadline earlier than that one is
/// filed, which with the one delay a strategy uses at a time is rare. A deadline lives here until it passes, however
/// early its wait ended, unless the heap grows past twice the deadlines still waiting (and a floor): then the thread
/// takes the heap out, keeps the deadlines whose wait is still pending and puts them back, so a long delay under a
/// high request rate costs a bounded heap. Only for <see cref="TimeProvider.System"/>: other clocks (a test's) keep a
/// timer per round.
/// </para>
/// </remarks>
internal sealed class HedgeClock
{
    private const int MinCompactAt = 4096;

    private readonly object _gate = new();
    private readonly TimeProvider _timeProvider = TimeProvider.System;
    private readonly int _minCompactAt;
    private PriorityQueue<(HedgeRound Round, long Arming), long> _deadlines = new();

    // The heap callers file into while the thread sorts the other one; kept with its capacity, so dropping ended
    // waits allocates nothing once both have grown to their working size.
    private PriorityQueue<(HedgeRound Round, long Arming), long> _spare = new();

    // The heap's size at which the thread drops the deadlines of ended waits, and whether a caller asked it to.
    private int _compactAt;
    private bool _compact;

    // The deadline the thread sleeps until: long.MaxValue when it sleeps with none to wait for, long.MinValue while it
    // is awake (it looks at the heap again before it sleeps). Read and written under the gate.
    private long _wakeAt = long.MinValue;
    private bool _started;

    /// <summary>Creates a clock; <paramref name="minCompactAt"/> is the heap size below which ended waits are never dropped early.</summary>
    internal HedgeClock(int minCompactAt = MinCompactAt)
    {
        _minCompactAt = minCompactAt;
        _compactAt = minCompactAt;
    }

    /// <summary>Gets the clock of <see cref="TimeProvider.System"/> for every round; its thread starts with the first deadline.</summary>
    public static HedgeClock System { get; } = new();

    /// <summary>Gets the number of deadlines filed and not passed yet, ended waits' included.</summary>
    public int Pending
    {
        get
        {
            lock (_gate)
            {
                return _deadlines.Count;
            }
        }
    }

    /// <summary>
    /// Files a deadline: once <paramref name="due"/> (a <see cref="TimeProvider.System"/> timestamp) has passed, the
    /// clock calls <see cref="HedgeRound.OnDeadline"/> with <paramref name="arming"/> on its own thread.
    /// </summary>
    public void Schedule(HedgeRound round, long arming, long due)
    {
        lock (_gate)
        {
            _deadlines.Enqueue((round, arming), due);
            if (!_started)
            {
                _started = true;
                var thread = new Thread(static state => ((HedgeClock)state!).Run()) { IsBackground = true, Name = "Lodestar hedging clock" };

                // No caller's ExecutionContext is captured: the thread only ends waits.
                thread.UnsafeStart(this);
            }
            else
            {
                var compact = !_compact && _deadlines.Count >= _compactAt;
                if (compact || due < _wakeAt)
                {
                    _compact |= compact;
                    Monitor.Pulse(_gate);
                }
            }
        }
    }

    private void Run()
    {
        var due = new List<(HedgeRound Round, long Arming)>();
        var waiting = new List<((HedgeRound Round, long Arming) Deadline, long At)>();
        PriorityQueue<(HedgeRound Round, long Arming), long>? filed = null;
        while (true)
        {
            lock (_gate)
            {
                if (filed is not null)
                {
                    // The deadlines still waiting, back with those filed meanwhile.
                    foreach (var (deadline, at) in waiting)
                    {
                        _deadlines.Enqueue(deadline, at);
                    }

                    waiting.Clear();
                    _spare = filed;
                    _compactAt = Math.Max(_minCompactAt, 2 * _deadlines.Count);
                    filed = null;
                }

                while (true)
                {
                    if (_compact)
                    {
                        // Taken out whole; callers file into the spare heap while the thread sorts this one.
                        _compact = false;
                        filed = _deadlines;
                        _deadlines = _spare;
                        _wakeAt = long.MinValue;
                        break;
                    }

                    var now = _timeProvider.GetTimestamp();
                    while (_deadlines.TryPeek(out var deadline, out var at) && at <= now)
                    {
                        due.Add(deadline);
                        _deadlines.Dequeue();
                    }

                    if (due.Count > 0)
                    {
                        _wakeAt = long.MinValue;
                        break;
                    }

                    if (!_deadlines.TryPeek(out _, out var next))
                    {
                        _wakeAt = long.MaxValue;
                        Monitor.Wait(_gate);
                        continue;
                    }

                    _wakeAt = next;
                    Monitor.Wait(_gate, ToWholeMilliseconds(next - now));
                }
            }

            if (filed is not null)
            {
                // A deadline due meanwhile stays too, to be fired once it is back.
                foreach (var (deadline, at) in filed.UnorderedItems)
                {
                    if (deadline.Round.IsWaiting(deadline.Arming))
                    {
                        waiting.Add((deadline, at));
                    }
                }

                filed.Clear();
                continue;
            }

            // Outside the lock, in deadline order: a round ends its wait, which runs the request's continuation on the
            // thread pool, never here.
            foreach (var (round, arming) in due)
            {
                round.OnDeadline(arming);
            }

            due.Clear();
        }
    }

    private int ToWholeMilliseconds(long ticks)
    {
        var milliseconds = Math.Ceiling(ticks * 1000.0 / _timeProvider.TimestampFrequency);
        return (int)Math.Clamp(milliseconds, 1, int.MaxValue);
    }
}
