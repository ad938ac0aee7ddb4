using System.Threading.Channels;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Testing;

/// <summary>
/// A <see cref="FakeTimeProvider"/> that also tells a test each timer the code under test creates, with its due time,
/// so that a test can wait until a loop has armed its delay, assert the exact delay, and then advance the clock past
/// it: a schedule asserted event by event, with no wall-clock wait.
/// </summary>
public sealed class RecordingTimeProvider : FakeTimeProvider
{
    private readonly Channel<TimeSpan> _created = Channel.CreateUnbounded<TimeSpan>();

    /// <summary>Initializes a clock at 2026-01-01T00:00:00Z.</summary>
    public RecordingTimeProvider()
        : base(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero))
    {
    }

    /// <inheritdoc/>
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = base.CreateTimer(callback, state, dueTime, period);
        _created.Writer.TryWrite(dueTime);
        return timer;
    }

    /// <summary>Waits (up to <paramref name="timeout"/>, default 10 s of real time) until the next timer is created and returns its due time.</summary>
    public async Task<TimeSpan> NextTimerAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        try
        {
            return await _created.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("No timer was created by the code under test.");
        }
    }

    /// <summary>Waits for the next timer whose due time is not infinite (skipping re-armable ones created idle) and returns it.</summary>
    public async Task<TimeSpan> NextFiniteTimerAsync(TimeSpan? timeout = null)
    {
        while (true)
        {
            var due = await NextTimerAsync(timeout);
            if (due != Timeout.InfiniteTimeSpan)
            {
                return due;
            }
        }
    }

    /// <summary>Gets whether a timer was created that no test has read yet.</summary>
    public bool HasUnreadTimer => _created.Reader.Count > 0;
}
