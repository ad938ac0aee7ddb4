using System.Diagnostics.Metrics;
using Lodestar.Endpoints;
using Lodestar.Health;
using Lodestar.Health.Internal;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Lodestar.Testing;
using Lodestar.Tests.LoadBalancing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using static Lodestar.Tests.Health.HealthTestKit;

namespace Lodestar.Tests.Health;

public sealed class HealthStageTests
{
    [Fact]
    public void Subscribe_TwoPolicies_ShareTheStageStatesAndSeeOneEjection()
    {
        // Arrange: round robin (from the fixture) and least request over one stage.
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 4);
        using var leastRequest = new ServiceBalancer(health.Stage, new LeastRequestPolicy(RandomSource.Shared), 0.5, RandomSource.Shared);
        var bad = health.Endpoints[2];

        // Act
        Report(health, bad, AttemptOutcome.ServerError, 5);

        // Assert: the same records, and both pickers leave the ejected endpoint out.
        Assert.Equal(health.Balancer.Endpoints, leastRequest.Endpoints);
        Assert.True(bad.IsEjected);
        Assert.DoesNotContain(bad, health.Balancer.Routable);
        Assert.DoesNotContain(bad, leastRequest.Routable);
    }

    [Fact]
    public void Update_EndpointStays_KeepsItsRecordWithHealthAndCounters()
    {
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 3);
        var state = health.Endpoints[0];
        Report(health, state, AttemptOutcome.ServerError, 5);
        state.OnRequestStarted();

        health.Stage.Update(EndpointSet.Create("svc", "test", [state.Endpoint, DiscoveredEndpoint.Create("127.0.0.1", 9100)], 2, DateTimeOffset.UnixEpoch));

        var after = health.Endpoints.Single(e => e.Endpoint.Equals(state.Endpoint));
        Assert.Same(state, after);
        Assert.True(after.IsEjected);
        Assert.Equal(1, after.InFlight);
        Assert.Equal(2, health.Endpoints.Count);
    }

    [Fact]
    public void Statistics_NoPolicyAsksForLatency_EwmaIsNotUpdated_UntilPeakEwmaSubscribes()
    {
        // Arrange: only round robin on the stage.
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 2);
        var state = health.Endpoints[0];

        // Act
        state.OnRequestCompleted(true, TimeSpan.FromMilliseconds(40), state.OnRequestStarted());
        var before = state.LatencyEstimate;
        using var peakEwma = new ServiceBalancer(health.Stage, new PeakEwmaPolicy(RandomSource.Shared), 0.5, RandomSource.Shared);
        state.OnRequestCompleted(true, TimeSpan.FromMilliseconds(40), state.OnRequestStarted());

        // Assert
        Assert.Null(before);
        Assert.Equal(TimeSpan.FromMilliseconds(40), state.LatencyEstimate);
        Assert.Equal(EndpointStatistics.Latency, health.Stage.Tracking.Statistics);
    }

    [Fact]
    public void Statistics_ServiceLoadTurnedOnMidRequest_TotalNeverCountsTheEarlierRequest()
    {
        // Arrange: a request starts while no policy needs the service-wide load.
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 2);
        var state = health.Endpoints[0];
        var counted = state.OnRequestStarted();

        // Act: ring hash subscribes, another request starts, then both end.
        using var ring = new ServiceBalancer(health.Stage, new RingHashPolicy(RandomSource.Shared), 0.5, RandomSource.Shared);
        var countedSecond = state.OnRequestStarted();
        var whileBoth = health.Stage.Tracking.InFlight;
        state.OnRequestCompleted(true, TimeSpan.Zero, counted);
        var afterFirst = health.Stage.Tracking.InFlight;
        state.OnRequestCompleted(true, TimeSpan.Zero, countedSecond);

        // Assert
        Assert.False(counted);
        Assert.True(countedSecond);
        Assert.Equal(1, whileBoth);
        Assert.Equal(1, afterFirst);
        Assert.Equal(0, health.Stage.Tracking.InFlight);
    }

    [Fact]
    public void Ejection_ConnectFailuresInARow_ReasonIsConnectFailureWithSinceAndUntil()
    {
        // Arrange
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
        var logs = new CapturingLoggerProvider();
        using var health = CreateHealth(time, 5, o => o.BaseEjectionTime = TimeSpan.FromSeconds(30), logger: logs.CreateLogger("test"));
        var state = health.Endpoints[1];
        using var ejections = new EjectionRecorder();

        // Act
        Report(health, state, AttemptOutcome.ConnectFailure, 5);
        time.Advance(TimeSpan.FromSeconds(10));

        // Assert: the reason names what happened, in the state, the metric and the log line.
        var ejection = Assert.IsType<EndpointEjection>(state.Ejection);
        Assert.Equal(EjectionReasons.ConnectFailure, ejection.Reason);
        Assert.Equal(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero), ejection.Since);
        Assert.Equal(ejection.Since + TimeSpan.FromSeconds(30), ejection.Until);
        Assert.Equal(TimeSpan.FromSeconds(20), ejection.GetTimeLeft(time.GetUtcNow()));
        Assert.Equal(1, ejection.Count);
        Assert.Contains((state.Endpoint.Address, EjectionReasons.ConnectFailure), ejections.Seen);
        Assert.Contains(logs.Entries, e => e.EventId.Name == "EndpointEjected" && e.Level == LogLevel.Warning && e.Message.Contains("connect_failure", StringComparison.Ordinal));
    }

    [Fact]
    public void Ejection_ConnectFailuresThen5xx_ReasonIsConsecutive5xx()
    {
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 5);
        var state = health.Endpoints[0];

        Report(health, state, AttemptOutcome.ConnectFailure, 3);
        Report(health, state, AttemptOutcome.ServerError, 2);

        Assert.Equal(EjectionReasons.Consecutive5xx, state.Ejection?.Reason);
    }

    [Fact]
    public void Ejection_GatewayFailuresEnforced_ReasonIsConsecutiveGatewayFailure()
    {
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 5, o =>
        {
            o.ConsecutiveGatewayFailures = 3;
            o.EnforcingConsecutiveGatewayFailures = 100;
        });
        var state = health.Endpoints[0];

        Report(health, state, AttemptOutcome.GatewayFailure, 3);

        Assert.Equal(EjectionReasons.ConsecutiveGatewayFailure, state.Ejection?.Reason);
    }

    [Fact]
    public void Ejection_ConnectFailuresWithGatewayCheckEnforced_ReasonIsConnectFailure()
    {
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 5, o =>
        {
            o.ConsecutiveGatewayFailures = 3;
            o.EnforcingConsecutiveGatewayFailures = 100;
        });
        var state = health.Endpoints[0];

        Report(health, state, AttemptOutcome.ConnectFailure, 3);

        Assert.Equal(EjectionReasons.ConnectFailure, state.Ejection?.Reason);
    }

    [Fact]
    public void Ejection_Returned_EjectionClearedAndReasonGone()
    {
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 5, o =>
        {
            o.Interval = TimeSpan.FromSeconds(1);
            o.BaseEjectionTime = TimeSpan.FromSeconds(2);
        });
        var state = health.Endpoints[0];
        Report(health, state, AttemptOutcome.ServerError, 5);

        time.Advance(TimeSpan.FromSeconds(2));

        Assert.Null(state.Ejection);
        Assert.False(state.IsEjected);
        Assert.Contains(state, health.Balancer.Routable);
    }

    [Fact]
    public void CircuitState_BreakerTrips_StateShowsOpenThenHalfOpen()
    {
        var time = new FakeTimeProvider();
        using var health = CreateHealth(time, 3, o => o.Enabled = false, b =>
        {
            b.Enabled = true;
            b.MinimumThroughput = 2;
            b.BreakDuration = TimeSpan.FromSeconds(5);
        });
        var state = health.Endpoints[0];
        var closed = state.CircuitState;

        Report(health, state, AttemptOutcome.ServerError, 2);
        var open = state.CircuitState;
        time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(CircuitState.Closed, closed);
        Assert.Equal(CircuitState.Open, open);
        Assert.Equal(CircuitState.HalfOpen, state.CircuitState);
        Assert.Equal(CircuitState.Closed, health.Endpoints[1].CircuitState);
    }

    [Fact]
    public void Dispose_StageDisposed_NoMorePublicationsReachTheBalancer()
    {
        var time = new FakeTimeProvider();
        var health = CreateHealth(time, 3);
        var balancer = health.Balancer;
        var before = balancer.Endpoints.Count;

        health.Dispose();
        health.Stage.Update(EndpointSet.Create("svc", "test", [DiscoveredEndpoint.Create("127.0.0.1", 9500)], 5, DateTimeOffset.UnixEpoch));

        Assert.Equal(3, before);
        Assert.Equal(3, balancer.Endpoints.Count);
    }

    /// <summary>Records the <c>lodestar.endpoint.ejections</c> measurements: endpoint and reason tag.</summary>
    private sealed class EjectionRecorder : IDisposable
    {
        private readonly MeterListener _listener = new();

        public EjectionRecorder()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Name == "lodestar.endpoint.ejections" && ReferenceEquals(instrument, Metrics.Ejections))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
            {
                string? endpoint = null, reason = null;
                foreach (var tag in tags)
                {
                    endpoint = tag.Key == "lodestar.endpoint" ? tag.Value as string : endpoint;
                    reason = tag.Key == "lodestar.ejection.reason" ? tag.Value as string : reason;
                }

                lock (Seen)
                {
                    Seen.Add((endpoint!, reason!));
                }
            });
            _listener.Start();
        }

        public List<(string Endpoint, string Reason)> Seen { get; } = [];

        public void Dispose() => _listener.Dispose();
    }
}
