using System.Threading.Channels;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Grpc.Tests.Infrastructure;

/// <summary>
/// A <see cref="FakeTimeProvider"/> that tells the test every time a timer is armed (created or changed) with a given
/// due time: a loop that re-arms its timer when a round ends can be awaited until it is ready for the next
/// <see cref="FakeTimeProvider.Advance"/>, so each advance runs exactly one round.
/// </summary>
internal sealed class ArmingTimeProvider(TimeSpan watched) : FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero))
{
    private readonly TimeSpan _watched = watched;
    private readonly Channel<bool> _armed = Channel.CreateUnbounded<bool>();

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ArmedTimer(base.CreateTimer(callback, state, dueTime, period), this);
        timer.Armed(dueTime);
        return timer;
    }

    /// <summary>Waits (up to 10 s of real time) until a timer is armed with the watched due time.</summary>
    public async Task WaitArmedAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await _armed.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"No timer was armed for {_watched}.");
        }
    }

    /// <summary>Forgets the armings seen so far.</summary>
    public void Forget()
    {
        while (_armed.Reader.TryRead(out _))
        {
        }
    }

    private sealed class ArmedTimer(ITimer inner, ArmingTimeProvider owner) : ITimer
    {
        public void Armed(TimeSpan dueTime)
        {
            if (dueTime == owner._watched)
            {
                owner._armed.Writer.TryWrite(true);
            }
        }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            var changed = inner.Change(dueTime, period);
            Armed(dueTime);
            return changed;
        }

        public void Dispose() => inner.Dispose();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
