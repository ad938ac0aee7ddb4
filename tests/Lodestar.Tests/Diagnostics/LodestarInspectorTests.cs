using Lodestar.Diagnostics;
using Lodestar.Diagnostics.Internal;
using Lodestar.Endpoints;
using Lodestar.Health;
using Lodestar.Health.Internal;
using Lodestar.LoadBalancing;

namespace Lodestar.Tests.Diagnostics;

public sealed class LodestarInspectorTests
{
    private static readonly DiscoveredEndpoint[] s_three =
    [
        DiscoveredEndpoint.Create("127.0.0.1", 9001), DiscoveredEndpoint.Create("127.0.0.1", 9002), DiscoveredEndpoint.Create("127.0.0.1", 9003),
    ];

    [Fact]
    public async Task Inspect_ConsecutiveServerErrors_ShowsEjectionWithReasonAndTimeLeftUntilReturn()
    {
        // Arrange
        await using var lodestar = await InspectorFixture.StartAsync(s_three, o => o.MaxEjectionPercent = 50);
        var ejectedAt = lodestar.Clock.GetUtcNow();

        // Act
        lodestar.Report("127.0.0.1:9001", AttemptOutcome.ServerError, times: 5);
        var ejected = lodestar.Endpoint("127.0.0.1:9001");
        lodestar.Advance(TimeSpan.FromSeconds(12));
        var later = lodestar.Endpoint("127.0.0.1:9001");
        lodestar.Advance(TimeSpan.FromSeconds(30));
        var returned = lodestar.Endpoint("127.0.0.1:9001");
        var events = lodestar.Inspector.Inspect("orders").Events;

        // Assert
        Assert.False(ejected.Healthy);
        Assert.Equal(EjectionReasons.Consecutive5xx, ejected.Ejection!.Reason);
        Assert.Equal(ejectedAt, ejected.Ejection.Since);
        Assert.Equal(TimeSpan.FromSeconds(30), ejected.Ejection.TimeLeft);
        Assert.Equal(1, ejected.Ejection.Multiplier);
        Assert.Equal(TimeSpan.FromSeconds(18), later.Ejection!.TimeLeft);
        Assert.Null(returned.Ejection);
        Assert.True(returned.Healthy);
        var eject = Assert.Single(events, e => e.Kind == LodestarEventKind.EndpointEjected);
        Assert.Equal("127.0.0.1:9001", eject.Endpoint);
        Assert.Equal(ejectedAt, eject.Timestamp);
        Assert.Contains(EjectionReasons.Consecutive5xx, eject.Detail, StringComparison.Ordinal);
        var back = Assert.Single(events, e => e.Kind == LodestarEventKind.EndpointReturned);
        Assert.Equal(ejectedAt + TimeSpan.FromSeconds(30), back.Timestamp); // the first outlier interval at or after the ejection's end
    }

    [Fact]
    public async Task Inspect_BreakerOpensThenProbesThenCloses_ShowsEachStateAndEvent()
    {
        // Arrange
        await using var lodestar = await InspectorFixture.StartAsync(s_three, o => o.Enabled = false, b =>
        {
            b.Enabled = true;
            b.MinimumThroughput = 2;
            b.BreakDuration = TimeSpan.FromSeconds(5);
        });

        // Act
        lodestar.Report("127.0.0.1:9002", AttemptOutcome.ServerError, times: 2);
        var open = lodestar.Endpoint("127.0.0.1:9002");
        lodestar.Advance(TimeSpan.FromSeconds(5));
        var halfOpen = lodestar.Endpoint("127.0.0.1:9002");
        lodestar.Report("127.0.0.1:9002", AttemptOutcome.Success);
        var closed = lodestar.Endpoint("127.0.0.1:9002");
        var kinds = lodestar.Inspector.Inspect("orders").Events.Where(e => e.Endpoint == "127.0.0.1:9002").Select(e => e.Kind).ToArray();

        // Assert
        Assert.Equal("open", open.Breaker);
        Assert.False(open.Healthy);
        Assert.Equal("half_open", halfOpen.Breaker);
        Assert.Equal("closed", closed.Breaker);
        Assert.True(closed.Healthy);
        Assert.Equal(
            [LodestarEventKind.EndpointAdded, LodestarEventKind.BreakerOpened, LodestarEventKind.BreakerHalfOpened, LodestarEventKind.BreakerClosed], kinds);
    }

    [Fact]
    public async Task Inspect_RegistryDrainsEndpoint_ShowsItDrainingAndNotHealthy()
    {
        // Arrange
        await using var lodestar = await InspectorFixture.StartAsync(s_three);

        // Act
        await lodestar.Source.PublishAsync("orders", s_three[0], s_three[1], s_three[2].With(weight: 0));
        await Testing.Eventually.TrueAsync(() => lodestar.Inspector.Inspect("orders").Services.Single().Source.SetVersion == 2, TimeSpan.FromSeconds(5),
            "the second set is applied");
        var service = lodestar.Inspector.Inspect("orders").Services.Single();

        // Assert
        var drained = Assert.Single(service.Endpoints, e => e.Draining);
        Assert.Equal("127.0.0.1:9003", drained.Address);
        Assert.Equal("draining", drained.RegistryStatus);
        Assert.False(drained.Healthy);
        Assert.Equal(0, drained.Weight);
        Assert.Equal(2, service.HealthyEndpoints);
        Assert.All(service.Endpoints.Where(e => !e.Draining), e => Assert.Equal("serving", e.RegistryStatus));
    }

    [Fact]
    public async Task Inspect_KubernetesTerminatingEndpoint_ShowsItDraining()
    {
        // Arrange
        var terminating = DiscoveredEndpoint.Create("127.0.0.1", 9004, metadata: new Dictionary<string, string> { ["k8s.terminating"] = "true" });
        await using var lodestar = await InspectorFixture.StartAsync([s_three[0], terminating]);

        // Act
        var endpoint = lodestar.Endpoint("127.0.0.1:9004");

        // Assert
        Assert.True(endpoint.Draining);
        Assert.False(endpoint.Healthy);
    }

    [Fact]
    public async Task Inspect_SourceErrorThenAnswer_ShowsRedactedErrorThenRecovery()
    {
        // Arrange
        await using var lodestar = await InspectorFixture.StartAsync(s_three);
        lodestar.Advance(TimeSpan.FromSeconds(3));
        var failedAt = lodestar.Clock.GetUtcNow();

        // Act
        await lodestar.Source.FailAsync("orders", new HttpRequestException("Registry at http://admin:hunter22@127.0.0.1:8500 said 500: Authorization: Bearer eyJhbGciOi.secret"));
        var failing = lodestar.Inspector.Inspect("orders");
        lodestar.Advance(TimeSpan.FromSeconds(2));
        await lodestar.Source.PublishAsync("orders", s_three);
        var recovered = lodestar.Inspector.Inspect("orders");

        // Assert
        var source = failing.Services.Single().Source;
        Assert.Equal("push", source.Name);
        Assert.Equal(failedAt, source.LastErrorAt);
        Assert.Contains("said 500", source.LastError, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter22", source.LastError, StringComparison.Ordinal);
        Assert.DoesNotContain("eyJhbGciOi", source.LastError, StringComparison.Ordinal);
        Assert.Equal(3, failing.Services.Single().Endpoints.Count); // the last good set stays in force
        var error = Assert.Single(failing.Events, e => e.Kind == LodestarEventKind.SourceError);
        Assert.DoesNotContain("hunter22", error.Detail, StringComparison.Ordinal);
        Assert.Null(recovered.Services.Single().Source.LastError);
        Assert.Null(recovered.Services.Single().Source.LastErrorAt);
        var recovery = Assert.Single(recovered.Events, e => e.Kind == LodestarEventKind.SourceRecovered);
        Assert.Equal(failedAt + TimeSpan.FromSeconds(2), recovery.Timestamp);
    }

    [Fact]
    public async Task Inspect_TrafficBeforeAndWithinLastMinute_ShareAndSuccessRateCountTheLastMinuteOnly()
    {
        // Arrange
        await using var lodestar = await InspectorFixture.StartAsync(s_three[..2]);
        lodestar.Report("127.0.0.1:9001", AttemptOutcome.ServerError, times: 4);
        lodestar.Report("127.0.0.1:9001", AttemptOutcome.Success, times: 26);
        lodestar.Report("127.0.0.1:9002", AttemptOutcome.Success, times: 10);

        // Act: a minute and more passes (sampled every 5 s), then new traffic splits 1:3.
        lodestar.Advance(TimeSpan.FromSeconds(65));
        lodestar.Report("127.0.0.1:9001", AttemptOutcome.Success, times: 10, latency: TimeSpan.FromMilliseconds(40));
        lodestar.Report("127.0.0.1:9002", AttemptOutcome.Success, times: 27);
        lodestar.Report("127.0.0.1:9002", AttemptOutcome.ServerError, times: 3);
        var inspection = lodestar.Inspector.Inspect("orders");
        var first = inspection.Services.Single().Endpoints.Single(e => e.Address == "127.0.0.1:9001");
        var second = inspection.Services.Single().Endpoints.Single(e => e.Address == "127.0.0.1:9002");

        // Assert
        Assert.Equal(0.25, first.Share, 6);
        Assert.Equal(0.75, second.Share, 6);
        Assert.Equal(1.0, first.SuccessRate!.Value, 6);
        Assert.Equal(0.9, second.SuccessRate!.Value, 6);
        Assert.Equal(40, first.Requests);
        Assert.Equal(4, first.Failures);
        Assert.Equal(TimeSpan.FromMilliseconds(40), first.Latency);
        Assert.Equal(TimeSpan.FromSeconds(5), inspection.SampleInterval);
        Assert.Equal(13, first.RecentLatencies.Count); // one sample every 5 s over 65 s
        Assert.All(first.RecentLatencies, l => Assert.Equal(10, l));
    }

    [Fact]
    public async Task Inspect_SlowStartWindow_ShowsRampFactorUntilTheWindowEnds()
    {
        // Arrange
        await using var lodestar = await InspectorFixture.StartAsync(s_three, loadBalancing: o => o.SlowStartWindow = TimeSpan.FromSeconds(40));

        // Act
        lodestar.Advance(TimeSpan.FromSeconds(20));
        var ramping = lodestar.Endpoint("127.0.0.1:9001");
        lodestar.Advance(TimeSpan.FromSeconds(20));
        var done = lodestar.Endpoint("127.0.0.1:9001");

        // Assert
        Assert.Equal(0.5, ramping.SlowStartFactor!.Value, 6);
        Assert.Null(done.SlowStartFactor);
    }

    [Fact]
    public async Task Inspect_ManySetChanges_KeepsTheNewestEventsUpToCapacity()
    {
        // Arrange
        await using var lodestar = await InspectorFixture.StartAsync(s_three);

        // Act: 150 changes that each remove one endpoint and add another (300 events).
        for (var i = 0; i < 150; i++)
        {
            await lodestar.Source.PublishAsync("orders", s_three[0], DiscoveredEndpoint.Create("127.0.0.1", 10_000 + i));
        }

        var events = lodestar.Inspector.Inspect().Events;

        // Assert
        Assert.Equal(LodestarEventLog.Capacity, events.Count);
        Assert.Equal("127.0.0.1:10149", events.Last(e => e.Kind == LodestarEventKind.EndpointAdded).Endpoint);
        Assert.True(events.Zip(events.Skip(1)).All(p => p.First.Timestamp <= p.Second.Timestamp), "oldest first");
    }

    [Fact]
    public async Task Inspect_FirstSetOfManyEndpoints_RecordsOneSummaryEvent()
    {
        // Arrange
        var many = Enumerable.Range(0, 200).Select(i => DiscoveredEndpoint.Create("127.0.0.1", 20_000 + i)).ToArray();

        // Act
        await using var lodestar = await InspectorFixture.StartAsync(many);
        var inspection = lodestar.Inspector.Inspect("orders");

        // Assert
        var added = Assert.Single(inspection.Events);
        Assert.Equal(LodestarEventKind.EndpointAdded, added.Kind);
        Assert.Null(added.Endpoint);
        Assert.StartsWith("200 endpoints added", added.Detail, StringComparison.Ordinal);
        Assert.Equal(200, inspection.Services.Single().Endpoints.Count);
    }

    [Fact]
    public async Task Inspect_ServiceNotCalled_IsNotListed()
    {
        // Arrange
        await using var lodestar = await InspectorFixture.StartAsync(s_three);

        // Act
        var other = lodestar.Inspector.Inspect("payments");
        var all = lodestar.Inspector.Inspect();

        // Assert
        Assert.Empty(other.Services);
        Assert.Equal("orders", Assert.Single(all.Services).Service);
        Assert.Equal(lodestar.Clock.GetUtcNow(), all.Timestamp);
    }

    [Fact]
    public async Task PickAndReport_WhileInspectorReads_AllocatesNoMoreThanWithoutAReader()
    {
        // Arrange
        await using var lodestar = await InspectorFixture.StartAsync(s_three, b => b.Enabled = true);
        var balancer = lodestar.Balancer;
        var context = new PickContext(null);
        long RequestPathBytes(int requests)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < requests; i++)
            {
                var state = balancer.Pick(in context)!;
                var ticket = HealthStage.TryAdmit(state);
                var counted = state.OnRequestStarted();
                state.OnRequestCompleted(true, TimeSpan.FromMilliseconds(1), counted);
                balancer.Stage.OnAttemptCompleted(state, ticket, AttemptOutcome.Success);
            }

            return GC.GetAllocatedBytesForCurrentThread() - before;
        }

        RequestPathBytes(1_000); // warm up (JIT, tiering)

        // Act
        var without = RequestPathBytes(20_000);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var reads = 0;
        var reader = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested && reads < 1_000_000)
            {
                _ = lodestar.Inspector.Inspect();
                ((LodestarInspector)lodestar.Inspector).Sample();
                Interlocked.Increment(ref reads);
            }
        });
        await Testing.Eventually.TrueAsync(() => Volatile.Read(ref reads) > 10, TimeSpan.FromSeconds(10), "the reader runs");
        var with = RequestPathBytes(20_000);
        var readsDuring = Volatile.Read(ref reads);
        await stop.CancelAsync();
        await reader;

        // Assert
        Assert.True(readsDuring > 10, "the reader kept reading during the measurement");
        Assert.Equal(without, with);
    }
}
