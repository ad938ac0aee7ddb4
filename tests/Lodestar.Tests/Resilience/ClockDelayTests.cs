using Lodestar.Resilience.Internal;
using Lodestar.Testing;

namespace Lodestar.Tests.Resilience;

public sealed class ClockDelayTests
{
    [Theory]
    [InlineData(1, 10_000)]
    [InlineData(5_000, 10_000)]
    [InlineData(10_000, 10_000)]
    [InlineData(10_001, 20_000)]
    [InlineData(2_500_000, 2_500_000)]
    public void RoundUp_Ticks_NextWholeMillisecond(long ticks, long expected)
        => Assert.Equal(expected, ClockDelay.RoundUp(TimeSpan.FromTicks(ticks)).Ticks);

    [Fact]
    public async Task WaitAsync_HalfAMillisecond_OneTimerOfOneMillisecondInsteadOfNoWait()
    {
        var time = new RecordingTimeProvider();

        var wait = ClockDelay.WaitAsync(time, TimeSpan.FromTicks(5_000), CancellationToken.None);
        var due = await time.NextTimerAsync();
        var doneAtOnce = wait.IsCompleted;
        time.Advance(due);
        await wait.WaitAsync(TimeSpan.FromSeconds(5));

        Assert.False(doneAtOnce);
        Assert.Equal(TimeSpan.FromMilliseconds(1), due);
        Assert.False(time.HasUnreadTimer);
    }

    [Fact]
    public void WaitAsync_Zero_CompletesAtOnceWithoutATimer()
    {
        var time = new RecordingTimeProvider();

        var wait = ClockDelay.WaitAsync(time, TimeSpan.Zero, CancellationToken.None);

        Assert.True(wait.IsCompletedSuccessfully);
        Assert.False(time.HasUnreadTimer);
    }
}
