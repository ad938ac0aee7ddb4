using Lodestar.Health.Internal;
using Lodestar.Internal;
using Lodestar.Testing;
using Lodestar.Tests.LoadBalancing;
using Microsoft.Extensions.Time.Testing;
using static Lodestar.Tests.Health.HealthTestKit;

namespace Lodestar.Tests.Health;

public sealed class OutlierDetectionTests
{
    [Fact]
    public void ConsecutiveServerErrors_ThresholdReached_EndpointEjectedAndNotPicked()
    {
        // Arrange
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 5);
        var balancer = health.Balancer;
        var bad = balancer.Endpoints[0];

        // Act
        Report(health, bad, AttemptOutcome.ServerError, 4);
        var ejectedAfterFour = bad.IsEjected;
        Report(health, bad, AttemptOutcome.ServerError);

        // Assert
        Assert.False(ejectedAfterFour);
        Assert.True(bad.IsEjected);
        Assert.DoesNotContain(bad, balancer.Routable);
        Assert.All(Enumerable.Range(0, 20), _ => Assert.NotSame(bad, balancer.Pick(null)));
    }

    [Fact]
    public void ConsecutiveServerErrors_SuccessInBetween_StreakResets()
    {
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 5);
        var balancer = health.Balancer;
        var state = balancer.Endpoints[0];

        Report(health, state, AttemptOutcome.ServerError, 4);
        Report(health, state, AttemptOutcome.Success);
        Report(health, state, AttemptOutcome.ServerError, 4);

        Assert.False(state.IsEjected);
    }

    [Fact]
    public void ConsecutiveGatewayFailures_Enforced_EjectsBeforeFiveErrors()
    {
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 5, o =>
        {
            o.ConsecutiveGatewayFailures = 3;
            o.EnforcingConsecutiveGatewayFailures = 100;
        });
        var balancer = health.Balancer;
        var state = balancer.Endpoints[1];

        Report(health, state, AttemptOutcome.GatewayFailure, 3);

        Assert.True(state.IsEjected);
    }

    [Fact]
    public void ConsecutiveGatewayFailures_NotEnforcedByDefault_FiveErrorCheckStillEjects()
    {
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 5, o => o.ConsecutiveGatewayFailures = 3);
        var balancer = health.Balancer;
        var state = balancer.Endpoints[1];

        Report(health, state, AttemptOutcome.GatewayFailure, 4);
        var afterFour = state.IsEjected;
        Report(health, state, AttemptOutcome.GatewayFailure);

        Assert.False(afterFour);
        Assert.True(state.IsEjected);
    }

    [Theory]
    [InlineData(10, 1)]
    [InlineData(40, 2)]
    [InlineData(100, 5)]
    public void MaxEjectionPercent_ManyBadEndpoints_CapRespectedButOneAlwaysAllowed(int percent, int expected)
    {
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 5, o => o.MaxEjectionPercent = percent, panicThreshold: 0);
        var balancer = health.Balancer;

        foreach (var state in balancer.Endpoints)
        {
            Report(health, state, AttemptOutcome.ServerError, 5);
        }

        Assert.Equal(expected, balancer.Endpoints.Count(e => e.IsEjected));
    }

    [Fact]
    public void EjectionTime_RepeatedEjections_GrowsWithEachEjectionAndReturnsOnInterval()
    {
        // Arrange: interval 1 s, base 10 s.
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 5, o =>
        {
            o.Interval = TimeSpan.FromSeconds(1);
            o.BaseEjectionTime = TimeSpan.FromSeconds(10);
        });
        var balancer = health.Balancer;
        var state = balancer.Endpoints[0];

        // Act + Assert: first ejection lasts 10 s.
        Report(health, state, AttemptOutcome.ServerError, 5);
        time.Advance(TimeSpan.FromSeconds(9));
        Assert.True(state.IsEjected);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(state.IsEjected);
        Assert.Contains(state, balancer.Routable);

        // The second ejection, right after returning, lasts 2 × 10 s.
        Report(health, state, AttemptOutcome.ServerError, 5);
        time.Advance(TimeSpan.FromSeconds(19));
        Assert.True(state.IsEjected);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(state.IsEjected);
    }

    [Fact]
    public void EjectionTime_ManyEjections_CappedAtMaxEjectionTime()
    {
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 5, o =>
        {
            o.Interval = TimeSpan.FromSeconds(1);
            o.BaseEjectionTime = TimeSpan.FromSeconds(10);
            o.MaxEjectionTime = TimeSpan.FromSeconds(25);
        });
        var balancer = health.Balancer;
        var state = balancer.Endpoints[0];
        for (var i = 0; i < 4; i++)
        {
            Report(health, state, AttemptOutcome.ServerError, 5);
            time.Advance(TimeSpan.FromSeconds(30));
            Assert.False(state.IsEjected);
        }

        Report(health, state, AttemptOutcome.ServerError, 5);
        time.Advance(TimeSpan.FromSeconds(25));

        Assert.False(state.IsEjected);
    }

    [Fact]
    public void SuccessRate_OneEndpointFarBelowTheOthers_EjectedAtInterval()
    {
        // Arrange: five endpoints with 100 requests each; one succeeds half the time.
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 5, o =>
        {
            o.Interval = TimeSpan.FromSeconds(1);
            o.ConsecutiveServerErrors = 0;
        });
        var balancer = health.Balancer;
        var outlier = balancer.Endpoints[3];
        foreach (var state in balancer.Endpoints)
        {
            for (var i = 0; i < 100; i++)
            {
                var failed = state == outlier ? i % 2 == 0 : i == 0;
                Report(health, state, failed ? AttemptOutcome.ServerError : AttemptOutcome.Success);
            }
        }

        // Act
        time.Advance(TimeSpan.FromSeconds(1));

        // Assert
        Assert.True(outlier.IsEjected);
        Assert.Equal(1, balancer.Endpoints.Count(e => e.IsEjected));
    }

    [Fact]
    public void SuccessRate_TooFewHostsWithVolume_NoEjection()
    {
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 5, o =>
        {
            o.Interval = TimeSpan.FromSeconds(1);
            o.ConsecutiveServerErrors = 0;
        });
        var balancer = health.Balancer;
        var outlier = balancer.Endpoints[3];
        for (var i = 0; i < 100; i++)
        {
            Report(health, outlier, i % 2 == 0 ? AttemptOutcome.ServerError : AttemptOutcome.Success);
            Report(health, balancer.Endpoints[0], AttemptOutcome.Success);
        }

        time.Advance(TimeSpan.FromSeconds(1));

        Assert.False(outlier.IsEjected);
    }

    [Fact]
    public void FailurePercentage_Enforced_EndpointAboveThresholdEjected()
    {
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 5, o =>
        {
            o.Interval = TimeSpan.FromSeconds(1);
            o.ConsecutiveServerErrors = 0;
            o.EnforcingSuccessRate = 0;
            o.EnforcingFailurePercentage = 100;
        });
        var balancer = health.Balancer;
        var outlier = balancer.Endpoints[2];
        foreach (var state in balancer.Endpoints)
        {
            for (var i = 0; i < 60; i++)
            {
                Report(health, state, state == outlier && i % 10 != 0 ? AttemptOutcome.GatewayFailure : AttemptOutcome.Success);
            }
        }

        time.Advance(TimeSpan.FromSeconds(1));

        Assert.True(outlier.IsEjected);
    }

    [Fact]
    public void Ejection_AllButOneEjectedWithPanic_PanicRoutesOverAll()
    {
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 2, panicThreshold: 0.6);
        var balancer = health.Balancer;

        Report(health, balancer.Endpoints[0], AttemptOutcome.ServerError, 5);

        Assert.True(balancer.Endpoints[0].IsEjected);
        Assert.True(balancer.InPanic);
        Assert.Equal(2, balancer.Routable.Count);
    }

    [Fact]
    public void Enforcing_PartialPercent_UsesRandomRoll()
    {
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 5, o => o.EnforcingConsecutiveServerErrors = 50, random: new FixedRandom(70));
        var balancer = health.Balancer;

        Report(health, balancer.Endpoints[0], AttemptOutcome.ServerError, 5);

        Assert.False(balancer.Endpoints[0].IsEjected);
    }

    private sealed class FixedRandom(int value) : RandomSource
    {
        public override int Next(int maxExclusive) => value % maxExclusive;

        public override double NextDouble() => value / 100.0;
    }
}
