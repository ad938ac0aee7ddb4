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

    [Theory]
    [InlineData(0.5, 300)]
    [InlineData(0.9, 512)]
    [InlineData(0.95, 450)]
    [InlineData(0.98, 512)]
    [InlineData(0.98, 1_000)]
    [InlineData(0.99, 777)]
    [InlineData(0.999, 512)]
    public void GetPercentile_RandomLatencies_MatchesTheRankInTheSortedRecentSamples(double percentile, int samples)
    {
        // Arrange: latencies with repeats, more than the ring holds in some rows (the ring keeps the last 512).
        var random = new Random(percentile.GetHashCode() ^ samples);
        var recorded = new List<long>();
        var tracker = new LatencyTracker(percentile);
        for (var i = 0; i < samples; i++)
        {
            var ticks = 1_000 + random.Next(0, 400) * 25;
            recorded.Add(ticks);
            tracker.Record(TimeSpan.FromTicks(ticks));
        }

        // Act
        var estimate = tracker.GetPercentile(TimeSpan.Zero);

        // Assert
        var recent = recorded.TakeLast(512).Order().ToArray();
        var rank = Math.Clamp((int)Math.Ceiling(percentile * recent.Length) - 1, 0, recent.Length - 1);
        Assert.Equal(TimeSpan.FromTicks(recent[rank]), estimate);
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
