using System.Collections.Concurrent;

namespace Lodestar.Resilience.Hedging.Internal;

/// <summary>
/// The system clock's hedging deadlines for every <see cref="HedgeRound"/> of the process: one background thread that
/// sleeps until the earliest deadline, ends the waits whose deadline has passed and goes back to sleep.
/// </summary>
/// <remarks>
/// <para>
/// A hedged request whose first attempt is answered within the delay (almost every one) only files its deadline here
/// and never takes it back: the round's arming number tells a deadline of a finished wait from the current one, so
/// answering costs nothing. A runtime timer per request costs more than its arming: the runtime's timer queue still
/// wakes at the due time of a timer that was stopped, and has a thread-pool thread look at the queue, which with delays
/// of a few milliseconds means waking pool threads hundreds of times a second for nothing. This thread wakes as often,
/// but only itself.
/// </para>
/// <para>
/// Filing takes no lock: a deadline goes to a lock-free queue of the processor the caller runs on, which only the
/// thread empties, when it wakes and before it sleeps. A lock every request took (an earlier build) made callers queue
/// behind each other and behind the thread on two cores. The thread orders the deadlines itself: with one delay at a
/// time they are filed in the order they fall due, so most go to a queue (constant time in and out); one filed earlier
/// than the last queued (a shorter delay) goes to a heap. It sleeps until the earliest of both, at most
/// <see cref="MaxSleepMilliseconds"/> while it holds any, and a caller wakes it only for a deadline earlier than that.
/// </para>
/// <para>
/// The thread publishes the time it sleeps until and then empties the queues once more; a caller files and then reads
/// that time (the queue's compare-and-swap and an explicit barrier order both sides). So either the thread finds the
/// deadline before it sleeps, or the caller sees the time it sleeps until and wakes it if the deadline is earlier.
/// </para>
/// <para>
/// A deadline lives here until it passes, however early its wait ended, unless the thread holds more than twice the
/// deadlines still waiting (and a floor): then it keeps only those, so a long delay under a high request rate costs a
/// bounded memory. Only for <see cref="TimeProvider.System"/>: other clocks (a test's) keep a timer per round.
/// </para>
/// </remarks>
internal sealed class HedgeClock
{
    private const int MinCompactAt = 4096;

    // The longest the thread sleeps while it holds deadlines: it takes the filed queue at least this often, so a long
    // delay under a high request rate holds a bounded number of them (those of ended waits are dropped, see Compact).
    private const int MaxSleepMilliseconds = 100;

    private readonly object _gate = new();
    private readonly TimeProvider _timeProvider = TimeProvider.System;
    private readonly int _minCompactAt;

    // Filed by callers without a lock, each into the queue of the processor it runs on (so the queue's tail stays in
    // that processor's cache instead of moving between them with every request); only the thread takes from them. A
    // queue's segment is reused once it has grown to the number filed between two of the thread's wake-ups, so filing
    // allocates nothing then.
    private readonly ConcurrentQueue<Deadline>[] _filed = NewLanes();

    // The thread's own: deadlines in the order they fall due, the due time of the last one queued, those filed earlier
    // than that, and the twins compaction keeps the still pending ones in.
    private Queue<Deadline> _inOrder = new();
    private Queue<Deadline> _inOrderSpare = new();
    private long _lastInOrder = long.MinValue;
    private PriorityQueue<Deadline, long> _outOfOrder = new();
    private PriorityQueue<Deadline, long> _outOfOrderSpare = new();

    // How many deadlines the thread holds, for Pending; written by the thread only.
    private int _held;

    // The number of deadlines held at which the thread drops those of ended waits; the thread's own.
    private int _compactAt;

    // The deadline the thread sleeps until: long.MaxValue when it sleeps with none to wait for, long.MinValue while it
    // is awake or has been woken. Written under the gate; read by callers without it, after filing.
    private long _wakeAt = long.MinValue;
    private int _started;

    /// <summary>Creates a clock; <paramref name="minCompactAt"/> is the number of deadlines below which ended waits are never dropped early.</summary>
    internal HedgeClock(int minCompactAt = MinCompactAt)
    {
        _minCompactAt = minCompactAt;
        _compactAt = minCompactAt;
    }

    /// <summary>Gets the clock of <see cref="TimeProvider.System"/> for every round; its thread starts with the first deadline.</summary>
    public static HedgeClock System { get; } = new();

    /// <summary>Gets the number of deadlines filed and not passed yet, ended waits' included.</summary>
    public int Pending => _filed.Sum(lane => lane.Count) + Volatile.Read(ref _held);

    /// <summary>
    /// Files a deadline: once <paramref name="due"/> (a <see cref="TimeProvider.System"/> timestamp) has passed, the
    /// clock calls <see cref="HedgeRound.OnDeadline"/> with <paramref name="arming"/> on its own thread.
    /// </summary>
    public void Schedule(HedgeRound round, long arming, long due)
    {
        // The enqueue is a full fence: the thread either sees this deadline when it looks at the queue after publishing
        // the time it sleeps until, or this caller sees that time here (see Run).
        _filed[(uint)Thread.GetCurrentProcessorId() % (uint)_filed.Length].Enqueue(new Deadline(round, arming, due));
        if (Volatile.Read(ref _started) == 0 && Interlocked.Exchange(ref _started, 1) == 0)
        {
            var thread = new Thread(static state => ((HedgeClock)state!).Run()) { IsBackground = true, Name = "Lodestar hedging clock" };

            // No caller's ExecutionContext is captured: the thread only ends waits.
            thread.UnsafeStart(this);
            return;
        }

        if (due < Volatile.Read(ref _wakeAt))
        {
            // Asleep (or about to sleep) past this deadline: wake it. Rare with one delay at a time, whose deadlines
            // are filed in the order they fall due.
            lock (_gate)
            {
                if (due < _wakeAt)
                {
                    _wakeAt = long.MinValue;
                    Monitor.Pulse(_gate);
                }
            }
        }
    }

    private void Run()
    {
        while (true)
        {
            TakeFiled();
            if (_inOrder.Count + _outOfOrder.Count >= _compactAt)
            {
                Compact();
            }

            // In deadline order within each: a round ends its wait, which runs the request's continuation on the thread
            // pool, never here.
            var passed = _timeProvider.GetTimestamp();
            while (_inOrder.TryPeek(out var deadline) && deadline.Due <= passed)
            {
                _inOrder.Dequeue();
                deadline.Round.OnDeadline(deadline.Arming);
            }

            while (_outOfOrder.TryPeek(out var deadline, out var due) && due <= passed)
            {
                _outOfOrder.Dequeue();
                deadline.Round.OnDeadline(deadline.Arming);
            }

            if (_inOrder.Count == 0)
            {
                _lastInOrder = long.MinValue;
            }

            Volatile.Write(ref _held, _inOrder.Count + _outOfOrder.Count);
            lock (_gate)
            {
                // Publish the time to sleep until, then look at the queue once more: a caller that filed before seeing
                // it is taken now, one after it sees it and wakes the thread if its deadline is earlier.
                var next = NextDue();
                Volatile.Write(ref _wakeAt, next);
                Interlocked.MemoryBarrier();
                if (TakeFiled() && NextDue() < next)
                {
                    _wakeAt = long.MinValue;
                    continue;
                }

                var now = _timeProvider.GetTimestamp();
                if (next <= now)
                {
                    _wakeAt = long.MinValue;
                    continue;
                }

                if (next == long.MaxValue)
                {
                    Monitor.Wait(_gate);
                }
                else
                {
                    Monitor.Wait(_gate, Math.Min(ToWholeMilliseconds(next - now), MaxSleepMilliseconds));
                }

                _wakeAt = long.MinValue;
            }
        }
    }

    /// <summary>Moves the filed deadlines into the queue (in due order) or the heap (filed earlier than the last queued); whether there were any.</summary>
    private bool TakeFiled()
    {
        var any = false;
        foreach (var lane in _filed)
        {
            while (lane.TryDequeue(out var deadline))
            {
                any = true;
                if (deadline.Due >= _lastInOrder)
                {
                    _inOrder.Enqueue(deadline);
                    _lastInOrder = deadline.Due;
                }
                else
                {
                    _outOfOrder.Enqueue(deadline, deadline.Due);
                }
            }
        }

        return any;
    }

    /// <summary>Keeps only the deadlines whose wait is still pending, in the spare queue and heap, and swaps them in.</summary>
    private void Compact()
    {
        foreach (var deadline in _inOrder)
        {
            if (deadline.Round.IsWaiting(deadline.Arming))
            {
                _inOrderSpare.Enqueue(deadline);
            }
        }

        foreach (var (deadline, due) in _outOfOrder.UnorderedItems)
        {
            if (deadline.Round.IsWaiting(deadline.Arming))
            {
                _outOfOrderSpare.Enqueue(deadline, due);
            }
        }

        _inOrder.Clear();
        _outOfOrder.Clear();
        (_inOrder, _inOrderSpare) = (_inOrderSpare, _inOrder);
        (_outOfOrder, _outOfOrderSpare) = (_outOfOrderSpare, _outOfOrder);
        _compactAt = Math.Max(_minCompactAt, 2 * (_inOrder.Count + _outOfOrder.Count));
    }

    private static ConcurrentQueue<Deadline>[] NewLanes()
    {
        var lanes = new ConcurrentQueue<Deadline>[Math.Clamp(Environment.ProcessorCount, 1, 64)];
        for (var i = 0; i < lanes.Length; i++)
        {
            lanes[i] = new ConcurrentQueue<Deadline>();
        }

        return lanes;
    }

    private long NextDue()
    {
        var next = _inOrder.TryPeek(out var deadline) ? deadline.Due : long.MaxValue;
        return _outOfOrder.TryPeek(out _, out var due) && due < next ? due : next;
    }

    private int ToWholeMilliseconds(long ticks)
    {
        var milliseconds = Math.Ceiling(ticks * 1000.0 / _timeProvider.TimestampFrequency);
        return (int)Math.Clamp(milliseconds, 1, int.MaxValue);
    }

    /// <summary>A round's arming and the timestamp it falls due at.</summary>
    private readonly record struct Deadline(HedgeRound Round, long Arming, long Due);
}
