using Lodestar.Resilience.Hedging.Internal;

namespace Lodestar.Tests.Resilience;

public sealed class LatencyTrackerTests
{
    [Fact]
    public void GetPercentile_FewerThanMinimumSamples_Fallback()
    {
        var tracker = new LatencyTracker(0.9);
        for (var i = 0; i < 99; i++)
        {
            tracker.Record(TimeSpan.FromMilliseconds(5));
        }

        Assert.Equal(TimeSpan.FromSeconds(1), tracker.GetPercentile(TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void GetPercentile_OneToTwoHundredMilliseconds_NinetiethIsOneHundredEighty()
    {
        var tracker = new LatencyTracker(0.9);
        for (var i = 200; i >= 1; i--)
        {
            tracker.Record(TimeSpan.FromMilliseconds(i));
        }

        Assert.Equal(TimeSpan.FromMilliseconds(180), tracker.GetPercentile(TimeSpan.Zero));
    }

    [Fact]
    public void GetPercentile_Recomputing_AllocatesNothing()
    {
        // Arrange: a full ring, estimated once.
        var tracker = new LatencyTracker(0.99);
        for (var i = 0; i < 600; i++)
        {
            tracker.Record(TimeSpan.FromTicks(1_000 + (i * 7919 % 512)));
        }

        tracker.GetPercentile(TimeSpan.Zero);

        // Act: ten more recomputations over the full ring.
        var before = GC.GetAllocatedBytesForCurrentThread();
        var estimate = TimeSpan.Zero;
        for (var round = 0; round < 10; round++)
        {
            for (var i = 0; i < 64; i++)
            {
                tracker.Record(TimeSpan.FromTicks(2_000));
            }

            estimate = tracker.GetPercentile(TimeSpan.Zero);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // Assert
        Assert.Equal(0, allocated);
        Assert.Equal(TimeSpan.FromTicks(2_000), estimate);
    }
}
