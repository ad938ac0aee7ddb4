using Lodestar.Internal;
using Lodestar.Testing;

namespace Lodestar.Tests.Internal;

public sealed class StripedCounterTests
{
    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(12, 16)]
    [InlineData(64, 16)]
    public void Cells_ForTheProcessors_NextPowerOfTwoAtMostSixteen(int processors, int cells)
    {
        Assert.Equal(cells, new StripedCounter(processors).Cells);
    }

    [Fact]
    public async Task Sum_ThreadsAddingAtOnce_CountsEveryAddThenResetClearsEveryCell()
    {
        // Arrange: as many cells as threads, so the adds spread over several of them (the processors the threads run on).
        const int threads = 8;
        const int adds = 20_000;
        var counter = new StripedCounter(threads);

        // Act: every thread adds at once, each a bounded number of times.
        await AtOnce.RunAsync(threads, () =>
        {
            for (var i = 0; i < adds; i++)
            {
                counter.Increment();
            }
        });
        var sum = counter.Sum();
        counter.Reset();

        // Assert: no add lost, whichever cell it went to, and none left after the reset.
        Assert.Equal(threads * adds, sum);
        Assert.Equal(0, counter.Sum());
    }
}
