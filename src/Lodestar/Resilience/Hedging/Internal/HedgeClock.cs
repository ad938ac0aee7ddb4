using System.Collections.Concurrent;

namespace Lodestar.Resilience.Hedging.Internal;

/// <summary>
/// The system clock's hedging deadlines for every <see cref="HedgeRound"/> of the process: one background thread that
/// sleeps until the earliest deadline, ends the waits whose deadline has passed and goes back to sleep, and the
/// requests themselves, which end the passed deadlines as they file theirs.
/// </summary>
/// <remarks>
/// <para>
/// A hedged request whose first attempt is answered within the delay (almost every one) only files its deadline here
/// and never takes it back: the round's arming number tells a deadline of a finished wait from the current one, so
/// answering costs nothing. A runtime timer per request costs more than its arming: the runtime's timer queue still
/// wakes at the due time of a timer that was stopped, and has a thread-pool thread look at the queue, which with delays
/// of a few milliseconds means waking pool threads hundreds of times a second for nothing.
/// </para>
/// <para>
/// A request that files a deadline at or after <see cref="_serviceAt"/> (the earliest deadline held, and at least
/// <see cref="ServiceQuantumMicroseconds"/> after the last look) takes the filed deadlines and ends the passed ones
/// itself, if no one else is doing so (a try-lock: a request never waits for it). While requests file densely (at least
/// <see cref="BusyFilingsPerMillisecond"/> a millisecond since the thread last looked), they end the deadlines in time,
/// and the thread sleeps <see cref="BusyLatenessMilliseconds"/> past the earliest one instead of waking for each: if the
/// requests stop (every caller waiting), a deadline ends that much later at most. Under load the thread otherwise woke
/// about a thousand times a second for deadlines of requests long answered; now about a hundred. With sparse filings
/// it wakes for each deadline, as before.
/// </para>
/// <para>
/// Filing takes no lock: a deadline goes to a lock-free queue of the processor the caller runs on, emptied by whoever
/// holds the gate, who orders them: with one delay at a time they are filed in the order they fall due, so most go to a
/// queue (constant time in and out); one filed earlier than the last queued (a shorter delay) goes to a heap. The
/// thread holds the gate except while it sleeps, so a request takes it only then.
/// </para>
/// <para>
/// The thread publishes the earliest deadline it holds as it sleeps and then empties the queues once more; a caller
/// files and then reads that time (the queue's compare-and-swap and an explicit barrier order both sides). So either
/// the thread finds the deadline before it sleeps, or the caller sees the time and wakes it if the deadline is earlier.
/// </para>
/// <para>
/// A deadline lives here until it passes, however early its wait ended, unless more than twice the deadlines still
/// waiting (and a floor) are held: then only those are kept, so a long delay under a high request rate costs a bounded
/// memory. Only for <see cref="TimeProvider.System"/>: other clocks (a test's) keep a timer per round.
/// </para>
/// </remarks>
internal sealed class HedgeClock
{
    private const int MinCompactAt = 4096;

    // The longest the thread sleeps while it holds deadlines: it takes the filed queue at least this often, so a long
    // delay under a high request rate holds a bounded number of them (those of ended waits are dropped, see Compact).
    private const int MaxSleepMilliseconds = 100;

    // Filings a millisecond, since the thread last looked, from which the requests end the passed deadlines themselves.
    private const int BusyFilingsPerMillisecond = 5;

    // How long past the earliest deadline the thread sleeps while the requests end them.
    private const int BusyLatenessMilliseconds = 10;

    // The least time between two looks by the requests: each ends the deadlines passed since the last.
    private const int ServiceQuantumMicroseconds = 500;

    private readonly object _gate = new();
    private readonly TimeProvider _timeProvider;
    private readonly int _minCompactAt;
    private readonly long _serviceQuantum;
    private readonly long _ticksPerMillisecond;

    // Filed by callers without a lock, each into the queue of the processor it runs on (so the queue's tail stays in
    // that processor's cache instead of moving between them with every request); taken only under the gate. A queue's
    // segment is reused once it has grown to the number filed between two looks, so filing allocates nothing then.
    private readonly ConcurrentQueue<Deadline>[] _filed = NewLanes();

    // Under the gate: deadlines in the order they fall due, the due time of the last one queued, those filed earlier
    // than that, the twins compaction keeps the still pending ones in, and the number taken from the filed queues.
    private Queue<Deadline> _inOrder = new();
    private Queue<Deadline> _inOrderSpare = new();
    private long _lastInOrder = long.MinValue;
    private PriorityQueue<Deadline, long> _outOfOrder = new();
    private PriorityQueue<Deadline, long> _outOfOrderSpare = new();
    private long _taken;

    // How many deadlines are held, for Pending; written under the gate.
    private int _held;

    // The number of deadlines held at which those of ended waits are dropped; under the gate.
    private int _compactAt;

    // The earliest deadline the thread held when it went to sleep: long.MaxValue when it sleeps with none, long.MinValue
    // while it is awake or has been woken. Written under the gate; read by callers without it, after filing.
    private long _wakeFor = long.MinValue;

    // From when a request that files a deadline looks for passed ones: the earliest held, and at least a quantum after
    // the last look. Written under the gate; read by callers without it.
    private long _serviceAt = long.MinValue;
    private int _started;

    /// <summary>Creates a clock.</summary>
    /// <param name="minCompactAt">The number of deadlines below which ended waits are never dropped early.</param>
    /// <param name="timeProvider">
    /// The time of the deadlines: <see cref="TimeProvider.System"/> (by default) starts the clock's thread with the first
    /// deadline; on any other (a test's) the clock has no thread, and only requests filing deadlines end passed ones.
    /// </param>
    internal HedgeClock(int minCompactAt = MinCompactAt, TimeProvider? timeProvider = null)
    {
        _timeProvider = timeProvider ?? TimeProvider.System;
        _started = _timeProvider == TimeProvider.System ? 0 : 1;
        _minCompactAt = minCompactAt;
        _compactAt = minCompactAt;
        _ticksPerMillisecond = _timeProvider.TimestampFrequency / 1000;
        _serviceQuantum = _timeProvider.TimestampFrequency * ServiceQuantumMicroseconds / 1_000_000;
    }

    /// <summary>Gets the clock of <see cref="TimeProvider.System"/> for every round; its thread starts with the first deadline.</summary>
    public static HedgeClock System { get; } = new();

    /// <summary>Gets the number of deadlines filed and not passed yet, ended waits' included.</summary>
    public int Pending => _filed.Sum(lane => lane.Count) + Volatile.Read(ref _held);

    /// <summary>
    /// Files a deadline: once <paramref name="due"/> (a <see cref="TimeProvider.System"/> timestamp) has passed, the
    /// clock calls <see cref="HedgeRound.OnDeadline"/> with <paramref name="arming"/>, on its own thread or on that of a
    /// request filing a deadline later. <paramref name="now"/> is the timestamp the caller took to compute the deadline.
    /// </summary>
    public void Schedule(HedgeRound round, long arming, long due, long now)
    {
        // The enqueue is a full fence: the thread either sees this deadline when it looks at the queue after publishing
        // the deadline it sleeps for, or this caller sees that deadline here (see Run).
        _filed[(uint)Thread.GetCurrentProcessorId() % (uint)_filed.Length].Enqueue(new Deadline(round, arming, due));
        if (Volatile.Read(ref _started) == 0 && Interlocked.Exchange(ref _started, 1) == 0)
        {
            var thread = new Thread(static state => ((HedgeClock)state!).Run()) { IsBackground = true, Name = "Lodestar hedging clock" };

            // No caller's ExecutionContext is captured: the thread only ends waits.
            thread.UnsafeStart(this);
            return;
        }

        if (now >= Volatile.Read(ref _serviceAt) && Monitor.TryEnter(_gate))
        {
            // A deadline has passed since the last look: end it here, unless the thread (or another request) is at it.
            // The waits' continuations run on the thread pool, not on this request's thread.
            try
            {
                Service(now);
            }
            finally
            {
                Monitor.Exit(_gate);
            }
        }

        if (due < Volatile.Read(ref _wakeFor))
        {
            // Asleep (or about to sleep) for a later deadline: wake it. Rare with one delay at a time, whose deadlines
            // are filed in the order they fall due.
            lock (_gate)
            {
                if (due < _wakeFor)
                {
                    _wakeFor = long.MinValue;
                    Monitor.Pulse(_gate);
                }
            }
        }
    }

    private void Run()
    {
        lock (_gate)
        {
            var busy = false;
            var windowStart = _timeProvider.GetTimestamp();
            var windowTaken = 0L;
            while (true)
            {
                var now = _timeProvider.GetTimestamp();
                Service(now);

                // How densely deadlines were filed since the last look of at least a millisecond's window.
                if (now - windowStart >= _ticksPerMillisecond)
                {
                    busy = (_taken - windowTaken) * _ticksPerMillisecond >= BusyFilingsPerMillisecond * (now - windowStart);
                    windowStart = now;
                    windowTaken = _taken;
                }

                // Publish the deadline to sleep for, then look at the queue once more: a caller that filed before seeing
                // it is taken now, one after it sees it and wakes the thread if its deadline is earlier.
                var next = NextDue();
                Volatile.Write(ref _wakeFor, next);
                Interlocked.MemoryBarrier();
                if (TakeFiled() && NextDue() < next)
                {
                    _wakeFor = long.MinValue;
                    continue;
                }

                if (next <= now)
                {
                    _wakeFor = long.MinValue;
                    continue;
                }

                if (next == long.MaxValue)
                {
                    Monitor.Wait(_gate);
                }
                else
                {
                    // While requests end the deadlines, sleep past the earliest: this thread only ends those left when
                    // the requests stop.
                    var wakeAt = busy ? next + (BusyLatenessMilliseconds * _ticksPerMillisecond) : next;
                    Monitor.Wait(_gate, Math.Min(ToWholeMilliseconds(wakeAt - now), MaxSleepMilliseconds));
                }

                _wakeFor = long.MinValue;
            }
        }
    }

    /// <summary>Under the gate: takes the filed deadlines, drops ended ones if too many are held, ends the passed ones, and publishes when to look next.</summary>
    private void Service(long now)
    {
        TakeFiled();
        if (_inOrder.Count + _outOfOrder.Count >= _compactAt)
        {
            Compact();
        }

        // In deadline order within each: a round ends its wait, which runs the request's continuation on the thread
        // pool, never here.
        while (_inOrder.TryPeek(out var deadline) && deadline.Due <= now)
        {
            _inOrder.Dequeue();
            deadline.Round.OnDeadline(deadline.Arming);
        }

        while (_outOfOrder.TryPeek(out var deadline, out var due) && due <= now)
        {
            _outOfOrder.Dequeue();
            deadline.Round.OnDeadline(deadline.Arming);
        }

        if (_inOrder.Count == 0)
        {
            _lastInOrder = long.MinValue;
        }

        Volatile.Write(ref _held, _inOrder.Count + _outOfOrder.Count);
        // With none held, the next request after the quantum takes what was filed meanwhile.
        var next = NextDue();
        Volatile.Write(ref _serviceAt, next == long.MaxValue ? now + _serviceQuantum : Math.Max(next, now + _serviceQuantum));
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
                _taken++;
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
