using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Lodestar.Testing;
using Microsoft.Extensions.Time.Testing;
using static Lodestar.Tests.LoadBalancing.BalancerFixture;

namespace Lodestar.Tests.LoadBalancing;

public class PeakEwmaPolicyTests
{
    private static readonly TimeSpan s_decay = TimeSpan.FromSeconds(10);

    [Fact]
    public void OnRequestCompleted_SlowerObservation_MovesEstimateAQuarterOfTheWayAtOnce()
    {
        // Arrange
        var clock = new FakeTimeProvider();
        var state = Tracked(clock);

        // Act
        Complete(state, true, 10);
        clock.Advance(TimeSpan.FromMilliseconds(500));
        Complete(state, true, 14);

        // Assert: a quarter of the 4 ms, under the cap of a quarter of the estimate.
        Assert.Equal(0.010 + (0.25 * 0.004), state.GetLatencyEstimate(clock.GetTimestamp()), 6);
    }

    [Fact]
    public void OnRequestCompleted_PeakWeightOne_ReplacesEstimateAtOnceAsLinkerdDoes()
    {
        var clock = new FakeTimeProvider();
        var state = Tracked(clock, new EndpointTracking(clock, s_decay, TimeSpan.FromSeconds(1), EndpointStatistics.Latency) { PeakWeight = 1, PeakGrowth = double.PositiveInfinity });

        Complete(state, true, 10);
        clock.Advance(TimeSpan.FromSeconds(1));
        Complete(state, true, 100);

        Assert.Equal(0.100, state.GetLatencyEstimate(clock.GetTimestamp()), 6);
    }

    [Fact]
    public void OnRequestCompleted_EndpointTurnsTenTimesSlower_EstimateNearlyTwiceAfterThreeAnswersOverFiveTimesAfterEight()
    {
        // Arrange
        var clock = new FakeTimeProvider();
        var state = Tracked(clock);
        Complete(state, true, 5);

        // Act
        var estimates = new List<double>();
        for (var i = 0; i < 9; i++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(1));
            Complete(state, true, 50);
            estimates.Add(state.GetLatencyEstimate(clock.GetTimestamp()));
        }

        // Assert: 5 ms × 1.25 per answer while a quarter of the way to 50 ms is more (9.77 ms after three, 29.8 after
        // eight), then a quarter of the way: 29.8 + 0.25 × 20.2.
        Assert.Equal(0.005 * Math.Pow(1.25, 3), estimates[2], 6);
        Assert.Equal(0.005 * Math.Pow(1.25, 8), estimates[7], 6);
        Assert.Equal(estimates[7] + (0.25 * (0.050 - estimates[7])), estimates[8], 6);
    }

    [Fact]
    public void OnRequestCompleted_AnswerStalledForASecond_EstimateGrowsByAQuarterAtMost()
    {
        var clock = new FakeTimeProvider();
        var state = Tracked(clock);
        Complete(state, true, 5);

        clock.Advance(TimeSpan.FromMilliseconds(1));
        Complete(state, true, 1_000);

        Assert.Equal(0.00625, state.GetLatencyEstimate(clock.GetTimestamp()), 6);
    }

    [Fact]
    public void OnRequestCompleted_OneStalledAnswerAmongFrequentFastOnes_FadesWithinTwentyAnswers()
    {
        // Arrange: 5 ms answers a millisecond apart, where the time-based weight alone (10 s window) would keep a peak
        // for seconds.
        var clock = new FakeTimeProvider();
        var state = Tracked(clock);
        Complete(state, true, 5);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Complete(state, true, 30);
        var stalled = state.GetLatencyEstimate(clock.GetTimestamp());

        // Act
        for (var i = 0; i < 20; i++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(1));
            Complete(state, true, 5);
        }

        // Assert: 6.25 ms after the stall (a quarter more at most), then the excess shrinks by at least a tenth per answer.
        Assert.Equal(0.00625, stalled, 6);
        Assert.InRange(state.GetLatencyEstimate(clock.GetTimestamp()), 0.005, 0.005 + (0.00125 * Math.Pow(0.9, 20)) + 1e-6);
    }

    [Fact]
    public void OnRequestCompleted_FasterObservation_DecaysWithTimeConstant()
    {
        // Arrange: Linkerd's purely time-based average (no per-answer weight), so the time constant alone sets the weight.
        var clock = new FakeTimeProvider();
        var state = Tracked(clock, new EndpointTracking(clock, s_decay, TimeSpan.FromSeconds(1), EndpointStatistics.Latency) { SampleWeight = 0 });
        Complete(state, true, 100);

        // Act: 10 ms observed half a second later, before the estimate goes stale (a tenth of the decay).
        clock.Advance(s_decay / 20);
        Complete(state, true, 10);

        // Assert: 100 e^-0.05 + 10 (1 - e^-0.05)
        var expected = (0.100 * Math.Exp(-0.05)) + (0.010 * (1 - Math.Exp(-0.05)));
        Assert.Equal(expected, state.GetLatencyEstimate(clock.GetTimestamp()), 6);
    }

    [Fact]
    public void OnRequestCompleted_FasterAnswerAfterTheEstimateWentStale_ReplacesIt()
    {
        // Arrange: one slow answer, then nothing for longer than a tenth of the decay.
        var clock = new FakeTimeProvider();
        var state = Tracked(clock);
        Complete(state, true, 100);
        clock.Advance((s_decay / 10) + TimeSpan.FromMilliseconds(1));
        var stale = state.GetPickEstimate(clock.GetTimestamp()) < 0;

        // Act: the probe's answer, fast.
        Complete(state, true, 1);

        // Assert
        Assert.True(stale);
        Assert.True(state.GetPickEstimate(clock.GetTimestamp()) >= 0);
        Assert.Equal(0.001, state.GetLatencyEstimate(clock.GetTimestamp()), 6);
    }

    [Fact]
    public void OnRequestCompleted_SlowerAnswerAfterTheEstimateWentStale_StillDamped()
    {
        // Arrange
        var clock = new FakeTimeProvider();
        var state = Tracked(clock);
        Complete(state, true, 10);
        clock.Advance(TimeSpan.FromSeconds(2));

        // Act: the probe stalls for a second.
        Complete(state, true, 1000);

        // Assert: at most a quarter over the last estimate, as for any slower answer, not the second.
        Assert.Equal(0.0125, state.GetLatencyEstimate(clock.GetTimestamp()), 6);
    }

    [Fact]
    public void GetPickEstimate_OldEstimateWithRequestInFlight_NotStale()
    {
        // Arrange: an old estimate, but a request to the endpoint is on its way (the probe itself).
        var clock = new FakeTimeProvider();
        var state = Tracked(clock);
        Complete(state, true, 100);
        clock.Advance(TimeSpan.FromSeconds(5));

        // Act
        var counted = state.OnRequestStarted();

        // Assert: one probe at a time.
        Assert.True(state.GetPickEstimate(clock.GetTimestamp()) >= 0);
        state.OnRequestCompleted(true, TimeSpan.FromMilliseconds(1), counted);
        Assert.True(state.GetPickEstimate(clock.GetTimestamp()) >= 0);
    }

    [Theory]
    [InlineData(1_000, 100)]
    [InlineData(10_000, 1_000)]
    [InlineData(30_000, 1_000)]
    [InlineData(600_000, 1_000)]
    public void StaleAfter_ATenthOfTheDecayAtMostASecond(int decayMs, int staleMs)
    {
        // Arrange: the default window (30 s) is three times Linkerd's; a recovered endpoint must not wait 3 s for a probe.
        var clock = new FakeTimeProvider();
        var state = Tracked(clock, TimeSpan.FromMilliseconds(decayMs));
        Complete(state, true, 100);

        // Act / Assert: fresh up to the interval, stale (competes as never observed) just past it.
        clock.Advance(TimeSpan.FromMilliseconds(staleMs));
        Assert.True(state.GetPickEstimate(clock.GetTimestamp()) > 0);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(state.GetPickEstimate(clock.GetTimestamp()) < 0);
    }

    [Fact]
    public void GetLatencyEstimate_Idle_DecaysTowardZero()
    {
        // Arrange
        var clock = new FakeTimeProvider();
        var state = Tracked(clock);
        Complete(state, true, 50);

        // Act
        clock.Advance(TimeSpan.FromSeconds(20));

        // Assert
        Assert.Equal(0.050 * Math.Exp(-2), state.GetLatencyEstimate(clock.GetTimestamp()), 6);
    }

    [Fact]
    public void OnRequestCompleted_FastFailure_RecordsPenalty()
    {
        // Arrange
        var clock = new FakeTimeProvider();
        var state = new EndpointState(Endpoint(0), 0, new EndpointTracking(clock, s_decay, TimeSpan.FromMilliseconds(750), EndpointStatistics.Latency));

        // Act
        Complete(state, false, 1);

        // Assert
        Assert.Equal(0.750, state.GetLatencyEstimate(clock.GetTimestamp()), 6);
    }

    [Fact]
    public void Pick_OneSlowEndpoint_AvoidsIt()
    {
        // Arrange: 5 endpoints at 10 ms, one at 100 ms.
        var clock = new FakeTimeProvider();
        var endpoints = Enumerable.Range(0, 6).Select(i => Endpoint(i)).ToArray();
        var balancer = Create(new PeakEwmaPolicy(new SeededRandom(5)), endpoints, timeProvider: clock);
        for (var i = 0; i < endpoints.Length; i++)
        {
            Complete(State(balancer, endpoints[i]), true, i == 0 ? 100 : 10);
        }

        // Act
        var counts = Count(balancer, 10_000);

        // Assert: the slow endpoint only wins against nothing; P2C always compares it with a faster one.
        Assert.False(counts.ContainsKey(endpoints[0].Address));
    }

    [Fact]
    public void Pick_FastEndpointBusy_CostIncludesInFlight()
    {
        // Arrange: fast 10 ms with 120 in flight costs 10 × √121 = 110 ms; slow 100 ms idle costs 100 ms.
        var clock = new FakeTimeProvider();
        var fast = Endpoint(0);
        var slow = Endpoint(1);
        var balancer = Create(new PeakEwmaPolicy(new SeededRandom(5)), [fast, slow], timeProvider: clock);
        Complete(State(balancer, fast), true, 10);
        Complete(State(balancer, slow), true, 100);
        for (var i = 0; i < 120; i++)
        {
            State(balancer, fast).OnRequestStarted();
        }

        // Act
        var picked = balancer.Pick(null)!;

        // Assert
        Assert.Equal(slow, picked.Endpoint);
    }

    [Fact]
    public void Pick_NoObservations_CompetesAtTheBestKnownEstimateSoANewEndpointIsNotStarved()
    {
        // Arrange: a known endpoint answering in 1 ms, far under the 30 ms default; a new one never observed. At the
        // default the new one would never win, never be sent a request, and so never get an estimate.
        var clock = new FakeTimeProvider();
        var known = Endpoint(0);
        var fresh = Endpoint(1);
        var balancer = Create(new PeakEwmaPolicy(new SeededRandom(5)), [known, fresh], timeProvider: clock);
        Complete(State(balancer, known), true, 1);
        State(balancer, known).OnRequestStarted();

        // Act: the known endpoint has a request in flight, the new one none.
        var picked = balancer.Pick(null)!;

        // Assert: alone, the new one still costs the default (plus the cost's floor); beside a known one it competes at
        // its estimate.
        Assert.Equal(fresh, picked.Endpoint);
        var picker = new PeakEwmaPolicy.PeakEwmaPicker([State(balancer, fresh)], new SeededRandom(1), clock, 0.030, 2);
        Assert.Equal(0.030 + PeakEwmaPolicy.LatencyFloorSeconds, picker.Cost(State(balancer, fresh), clock.GetTimestamp()), 6);
    }

    [Fact]
    public void Pick_NoEndpointObservedYet_BothCompeteAtTheDefault()
    {
        // Arrange: nothing observed; both cost the default and the load decides.
        var clock = new FakeTimeProvider();
        var a = Endpoint(0);
        var b = Endpoint(1);
        var balancer = Create(new PeakEwmaPolicy(new SeededRandom(5)), [a, b], timeProvider: clock);
        State(balancer, a).OnRequestStarted();

        // Act / Assert
        Assert.Equal(b, balancer.Pick(null)!.Endpoint);
    }

    [Fact]
    public void OnRequestAbandoned_QuickerThanTheEstimate_NoFailureAndEstimateUnchanged()
    {
        // Arrange: a 10 ms endpoint whose attempt is cancelled after 2 ms because a hedge won.
        var clock = new FakeTimeProvider();
        var state = Tracked(clock);
        Complete(state, true, 10);
        var countedLoad = state.OnRequestStarted();

        // Act
        state.OnRequestAbandoned(TimeSpan.FromMilliseconds(2), countedLoad);

        // Assert: a failure would have recorded the 1 s penalty (doubling the estimate) and counted a failure.
        Assert.Equal(0, state.InFlight);
        Assert.Equal(0, state.Failures);
        Assert.Equal(0.010, state.GetLatencyEstimate(clock.GetTimestamp()), 6);
    }

    [Fact]
    public void OnRequestAbandoned_QuickerThanTheEstimateLeftByTheLastAnswer_EstimateStandsUndecayedAndFresh()
    {
        // Arrange: a 100 ms answer, then five seconds without one: the estimate has decayed to about 61 ms and is stale.
        var clock = new FakeTimeProvider();
        var state = Tracked(clock);
        Complete(state, true, 100);
        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.True(state.GetPickEstimate(clock.GetTimestamp()) < 0);
        var countedLoad = state.OnRequestStarted();
        clock.Advance(TimeSpan.FromMilliseconds(70));

        // Act: cancelled after 70 ms, above the decayed estimate but below the last answer.
        state.OnRequestAbandoned(TimeSpan.FromMilliseconds(70), countedLoad);

        // Assert: the estimate is the last answer's again, and fresh, so the endpoint is not tried again at once.
        Assert.Equal(0.100, state.GetLatencyEstimate(clock.GetTimestamp()), 6);
        Assert.Equal(0.100, state.GetPickEstimate(clock.GetTimestamp()), 6);
        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(0.100 * Math.Exp(-1), state.GetLatencyEstimate(clock.GetTimestamp()), 6);
    }

    [Fact]
    public void Pick_StaleSlowEndpointWhoseAttemptsAHedgeBeats_TriedOncePerStaleInterval()
    {
        // Arrange: four endpoints answering in 10 ms and one that answered in 100 ms 1.5 s ago, so it is stale and
        // competes as if never observed.
        var clock = new FakeTimeProvider();
        var endpoints = Enumerable.Range(0, 5).Select(i => Endpoint(i)).ToArray();
        var balancer = Create(new PeakEwmaPolicy(new SeededRandom(5)), endpoints, timeProvider: clock);
        var slow = State(balancer, endpoints[0]);
        Complete(slow, true, 100);
        clock.Advance(TimeSpan.FromMilliseconds(1_500));
        foreach (var endpoint in endpoints[1..])
        {
            Complete(State(balancer, endpoint), true, 10);
        }

        // Act: 400 picks, 1 ms apart; the fast endpoints answer, every attempt on the slow one loses to a hedge after 12 ms.
        var slowAttempts = 0;
        for (var i = 0; i < 400; i++)
        {
            var picked = balancer.Pick(null)!;
            var state = State(balancer, picked.Endpoint);
            var countedLoad = state.OnRequestStarted();
            if (state == slow)
            {
                slowAttempts++;
                state.OnRequestAbandoned(TimeSpan.FromMilliseconds(12), countedLoad);
            }
            else
            {
                state.OnRequestCompleted(true, TimeSpan.FromMilliseconds(10), countedLoad);
            }

            clock.Advance(TimeSpan.FromMilliseconds(1));
        }

        // Assert: the lost attempt says nothing against the 100 ms answer, so the endpoint is not tried again within
        // the stale interval (1 s); if the decay went on, it would stay stale and be picked whenever it is a candidate.
        Assert.Equal(1, slowAttempts);
    }

    [Fact]
    public void OnRequestAbandoned_SlowerThanTheEstimate_CountsAsALowerBound()
    {
        var clock = new FakeTimeProvider();
        var state = Tracked(clock);
        Complete(state, true, 10);
        var countedLoad = state.OnRequestStarted();

        state.OnRequestAbandoned(TimeSpan.FromMilliseconds(14), countedLoad);

        Assert.Equal(0, state.Failures);
        Assert.Equal(0.010 + (0.25 * 0.004), state.GetLatencyEstimate(clock.GetTimestamp()), 6);
    }

    /// <summary>One endpoint's state with latency tracked on <paramref name="clock"/>: the 10 s decay and 1 s failure penalty, or <paramref name="tracking"/>.</summary>
    private static EndpointState Tracked(FakeTimeProvider clock, EndpointTracking? tracking = null)
        => new(Endpoint(0), 0, tracking ?? new EndpointTracking(clock, s_decay, TimeSpan.FromSeconds(1), EndpointStatistics.Latency));

    /// <summary>One endpoint's state with latency tracked on <paramref name="clock"/> with a <paramref name="decay"/> window.</summary>
    private static EndpointState Tracked(FakeTimeProvider clock, TimeSpan decay)
        => Tracked(clock, new EndpointTracking(clock, decay, TimeSpan.FromSeconds(1), EndpointStatistics.Latency));

    private static void Complete(EndpointState state, bool success, int milliseconds)
    {
        state.OnRequestStarted();
        state.OnRequestCompleted(success, TimeSpan.FromMilliseconds(milliseconds));
    }
}
