using Lodestar.Xds.Channels.Internal;
using Lodestar.Xds.Routing;

namespace Lodestar.Xds.Tests.Channels;

/// <summary>How a matched route becomes a call's deadline cap (gRFC A31) and retry policy (gRFC A44), and the <c>grpc-timeout</c> header.</summary>
public sealed class XdsCallRouteTests
{
    [Theory]
    [InlineData(null, null, null, null)]
    [InlineData(null, null, 0, null)]
    [InlineData(null, null, 10, 10)]
    [InlineData(null, 0, 10, null)]
    [InlineData(null, 5, 10, 5)]
    [InlineData(7, null, null, 7)]
    [InlineData(7, null, 3, 3)]
    [InlineData(7, 0, 3, null)]
    public void From_MaxStreamDurationSettings_GiveGrfcA31Cap(int? listenerSeconds, int? headerMaxSeconds, int? routeSeconds, int? expectedSeconds)
    {
        // Arrange
        var match = Match(new XdsRouteAction
        {
            Clusters = [new XdsWeightedCluster("a", 1)],
            TotalWeight = 1,
            MaxStreamDuration = Seconds(routeSeconds),
            GrpcTimeoutHeaderMax = Seconds(headerMaxSeconds),
        }, retry: null);

        // Act
        var route = XdsCallRoute.From(match, Seconds(listenerSeconds));

        // Assert
        Assert.Equal(Seconds(expectedSeconds), route.MaxStreamDuration);
    }

    [Fact]
    public void For_SameRouteAndListener_ReusesTheDerivedSettings()
    {
        // Arrange
        var match = Match(new XdsRouteAction { Clusters = [new XdsWeightedCluster("a", 1)], TotalWeight = 1, MaxStreamDuration = TimeSpan.FromSeconds(3) },
            new XdsRetryPolicy(["unavailable"], 1, null, TimeSpan.FromMilliseconds(25), TimeSpan.FromMilliseconds(250), []));

        // Act
        var first = XdsCallRoute.For(match, null);
        var again = XdsCallRoute.For(match, null);
        var otherListener = XdsCallRoute.For(match, TimeSpan.FromSeconds(1));

        // Assert: cached per route; a listener change derives again (the route's own cap still wins).
        Assert.Same(first, again);
        Assert.NotSame(first, otherListener);
        Assert.Equal(TimeSpan.FromSeconds(3), otherListener.MaxStreamDuration);
        Assert.NotNull(first.Retry);
    }

    [Fact]
    public void From_RetryOnGrpcConditions_MapsThemToStatusCodes()
    {
        // Arrange
        var policy = new XdsRetryPolicy(["cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable", "5xx"], 2, null,
            TimeSpan.FromMilliseconds(25), TimeSpan.FromMilliseconds(250), []);

        // Act
        var retry = XdsGrpcRetryPolicy.From(policy)!;

        // Assert
        Assert.Equal([1, 4, 8, 13, 14], retry.Statuses.Order());
        Assert.Equal(3, retry.MaxAttempts);
        Assert.Equal(TimeSpan.FromMilliseconds(25), retry.InitialBackoff);
        Assert.Equal(TimeSpan.FromMilliseconds(250), retry.MaxBackoff);
    }

    [Theory]
    [InlineData("5xx,gateway-error,reset")]
    [InlineData("")]
    public void From_RetryOnWithoutGrpcCondition_IsNoPolicy(string retryOn)
    {
        var policy = new XdsRetryPolicy(retryOn.Split(',', StringSplitOptions.RemoveEmptyEntries), 3, null, TimeSpan.FromMilliseconds(25), TimeSpan.FromMilliseconds(250), []);

        Assert.Null(XdsGrpcRetryPolicy.From(policy));
    }

    [Theory]
    [InlineData(0, null)]
    [InlineData(1, 2)]
    [InlineData(4, 5)]
    [InlineData(10, 5)]
    public void From_NumRetries_GivesAttemptsCappedAtFive(int numRetries, int? expectedAttempts)
    {
        var policy = new XdsRetryPolicy(["unavailable"], numRetries, null, TimeSpan.FromMilliseconds(25), TimeSpan.FromMilliseconds(250), []);

        Assert.Equal(expectedAttempts, XdsGrpcRetryPolicy.From(policy)?.MaxAttempts);
    }

    [Fact]
    public void Backoff_Retries_AreJitteredUnderTheCappedExponential()
    {
        // Arrange: 100 ms base, 300 ms max; the random number 0.5 takes half of the ceiling.
        var retry = new XdsGrpcRetryPolicy(5, new HashSet<int> { 14 }, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(300));

        // Act
        var delays = Enumerable.Range(1, 4).Select(n => retry.Backoff(n, () => 0.5)).ToArray();
        var full = retry.Backoff(2, () => 1.0);

        // Assert: ceilings 100, 200, 300 (capped), 300.
        Assert.Equal([TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(150), TimeSpan.FromMilliseconds(150)], delays);
        Assert.Equal(TimeSpan.FromMilliseconds(200), full);
    }

    [Theory]
    [InlineData("200m", 200 * TimeSpan.TicksPerMillisecond)]
    [InlineData("5S", 5 * TimeSpan.TicksPerSecond)]
    [InlineData("2M", 2 * TimeSpan.TicksPerMinute)]
    [InlineData("1H", TimeSpan.TicksPerHour)]
    [InlineData("300u", 300 * TimeSpan.TicksPerMicrosecond)]
    [InlineData("1000n", 10)]
    public void TryParse_GrpcTimeoutValue_ReadsTheUnit(string value, long ticks)
    {
        Assert.True(GrpcTimeout.TryParse(value, out var timeout));
        Assert.Equal(TimeSpan.FromTicks(ticks), timeout);
    }

    [Theory]
    [InlineData("")]
    [InlineData("m")]
    [InlineData("10x")]
    [InlineData("-5S")]
    public void TryParse_InvalidValue_ReturnsFalse(string value) => Assert.False(GrpcTimeout.TryParse(value, out _));

    [Fact]
    public void Format_Timeouts_UseTheFinestUnitWithinEightDigits()
    {
        Assert.Equal("300m", GrpcTimeout.Format(TimeSpan.FromMilliseconds(300)));
        Assert.Equal("1m", GrpcTimeout.Format(TimeSpan.FromTicks(1)));
        Assert.Equal("1m", GrpcTimeout.Format(TimeSpan.FromMilliseconds(-5)));
        Assert.Equal("100000S", GrpcTimeout.Format(TimeSpan.FromSeconds(100_000)));
    }

    private static TimeSpan? Seconds(int? value) => value is { } s ? TimeSpan.FromSeconds(s) : null;

    private static XdsRouteResult Match(XdsRouteAction action, XdsRetryPolicy? retry)
    {
        var route = new XdsRoute { Name = "r", PathKind = XdsPathMatchKind.Prefix, PathValue = "/", Action = action };
        var host = new XdsVirtualHost("h", ["*"], [route], null);
        return new XdsRouteResult(host, route, "a", null, retry);
    }
}
