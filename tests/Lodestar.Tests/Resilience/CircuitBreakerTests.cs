using Lodestar.Health;
using Lodestar.Health.Internal;
using Lodestar.Testing;
using Microsoft.Extensions.Time.Testing;
using static Lodestar.Tests.Health.HealthTestKit;

namespace Lodestar.Tests.Resilience;

public sealed class CircuitBreakerTests
{
    private static CircuitBreaker Breaker(FakeTimeProvider time, int minimumThroughput = 4, int probes = 1)
        => new(time, failureRatio: 0.5, minimumThroughput, TimeSpan.FromSeconds(10), probes);

    [Fact]
    public void Closed_FailureRatioReachedOverMinimumThroughput_Opens()
    {
        var time = new FakeTimeProvider();
        var breaker = Breaker(time);
        var ticket = breaker.TryAcquire();

        Assert.Null(breaker.OnResult(ticket, success: true));
        Assert.Null(breaker.OnResult(ticket, success: true));
        Assert.Null(breaker.OnResult(ticket, success: false));
        var transition = breaker.OnResult(ticket, success: false);

        Assert.Equal(CircuitState.Open, transition);
        Assert.Equal(CircuitState.Open, breaker.State);
        Assert.Equal(-1, breaker.TryAcquire());
    }

    [Fact]
    public void Closed_BelowMinimumThroughput_StaysClosed()
    {
        var time = new FakeTimeProvider();
        var breaker = Breaker(time);
        var ticket = breaker.TryAcquire();

        for (var i = 0; i < 3; i++)
        {
            Assert.Null(breaker.OnResult(ticket, success: false));
        }

        Assert.Equal(CircuitState.Closed, breaker.State);
    }

    [Fact]
    public void Closed_SamplingWindowElapsed_CountsStartOver()
    {
        var time = new FakeTimeProvider();
        var breaker = Breaker(time);
        var ticket = breaker.TryAcquire();
        for (var i = 0; i < 3; i++)
        {
            breaker.OnResult(ticket, success: false);
        }

        time.Advance(TimeSpan.FromSeconds(10));
        var transition = breaker.OnResult(ticket, success: false);

        Assert.Null(transition);
        Assert.Equal(CircuitState.Closed, breaker.State);
    }

    [Fact]
    public void HalfOpen_LimitedProbes_ClosesAfterAllSucceed()
    {
        var time = new FakeTimeProvider();
        var breaker = Breaker(time, minimumThroughput: 1, probes: 2);
        breaker.OnResult(breaker.TryAcquire(), success: false);
        Assert.True(breaker.TryHalfOpen());

        var first = breaker.TryAcquire();
        var second = breaker.TryAcquire();
        var third = breaker.TryAcquire();
        Assert.True(first >= 0 && second >= 0);
        Assert.Equal(-1, third);

        Assert.Null(breaker.OnResult(first, success: true));
        Assert.Equal(CircuitState.Closed, breaker.OnResult(second, success: true));
        Assert.True(breaker.TryAcquire() >= 0);
    }

    [Fact]
    public void HalfOpen_ProbeFails_OpensAgain()
    {
        var time = new FakeTimeProvider();
        var breaker = Breaker(time, minimumThroughput: 1);
        breaker.OnResult(breaker.TryAcquire(), success: false);
        breaker.TryHalfOpen();

        var probe = breaker.TryAcquire();
        var transition = breaker.OnResult(probe, success: false);

        Assert.Equal(CircuitState.Open, transition);
        Assert.Equal(-1, breaker.TryAcquire());
    }

    [Fact]
    public void HalfOpen_ResultFromEarlierGeneration_Ignored()
    {
        var time = new FakeTimeProvider();
        var breaker = Breaker(time, minimumThroughput: 1);
        var stale = breaker.TryAcquire();
        breaker.OnResult(breaker.TryAcquire(), success: false);
        breaker.TryHalfOpen();

        var transition = breaker.OnResult(stale, success: false);

        Assert.Null(transition);
        Assert.Equal(CircuitState.HalfOpen, breaker.State);
    }

    [Fact]
    public void HalfOpen_ProbeAbandoned_SlotGivenBack()
    {
        var time = new FakeTimeProvider();
        var breaker = Breaker(time, minimumThroughput: 1);
        breaker.OnResult(breaker.TryAcquire(), success: false);
        breaker.TryHalfOpen();
        var probe = breaker.TryAcquire();
        Assert.Equal(-1, breaker.TryAcquire());

        breaker.OnAbandoned(probe);

        Assert.True(breaker.TryAcquire() >= 0);
    }

    [Fact]
    public void HealthStage_BreakerOpens_EndpointLeavesPickingAndReturnsHalfOpenAfterBreakDuration()
    {
        // Arrange
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 3, o => o.Enabled = false, b =>
        {
            b.Enabled = true;
            b.MinimumThroughput = 4;
            b.BreakDuration = TimeSpan.FromSeconds(5);
        });
        var balancer = health.Balancer;
        var state = balancer.Endpoints[0];

        // Act: trip the breaker.
        Report(health, state, AttemptOutcome.ServerError, 4);

        // Assert: open removes the endpoint from picking, like an ejection.
        Assert.True(state.IsBreakerOpen);
        Assert.DoesNotContain(state, balancer.Routable);
        Assert.Equal(-1, HealthStage.TryAdmit(state));

        // After the break duration it is half-open: back in the picker, one probe admitted.
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.False(state.IsBreakerOpen);
        Assert.Contains(state, balancer.Routable);
        Assert.Equal(CircuitState.HalfOpen, state.CircuitState);
        var probe = HealthStage.TryAdmit(state);
        Assert.True(probe >= 0);
        Assert.Equal(-1, HealthStage.TryAdmit(state));

        // A successful probe closes it.
        health.Stage.OnAttemptCompleted(state, probe, AttemptOutcome.Success);
        Assert.Equal(CircuitState.Closed, state.CircuitState);
    }
}
