using Lodestar.Consul.Discovery.Internal;
using Lodestar.Consul.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Consul;

namespace Lodestar.Consul.Tests.Discovery;

/// <summary>
/// The Consul source's loop on a recording clock against the fake agent: every delay it waits (backoff, minimum query
/// interval, stall timeout) is read as the source arms it and asserted exactly, and the clock moves only when the test
/// advances it.
/// </summary>
public sealed class ConsulEndpointSourceLoopTests
{
    private const string HealthPath = "/v1/health/service/orders";
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan s_minInterval = TimeSpan.FromMilliseconds(20);

    [Fact]
    public async Task Run_AgentFailsRepeatedly_WaitsTheExactBackoffScheduleThenPublishes()
    {
        // Arrange: every answer is a 500 until the sixth retry; the jitter is fixed at its ceiling.
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("a", "orders", "127.0.0.1", 7001);
        agent.FailWith500 = true;
        await using var harness = SourceHarness.Start(agent, o =>
        {
            o.Backoff.InitialDelay = TimeSpan.FromMilliseconds(100);
            o.Backoff.MaxDelay = TimeSpan.FromSeconds(1);
        }, random: 1.0);
        var clock = harness.Recording;

        // Act
        var schedule = new List<double>();
        for (var i = 0; i < 6; i++)
        {
            var delay = await clock.NextFiniteTimerAsync();
            schedule.Add(delay.TotalMilliseconds);
            agent.FailWith500 = i < 5;
            clock.Advance(delay);
        }

        await Eventually.TrueAsync(() => harness.Observer.HasSet, s_timeout, "the set is published once the agent answers");

        // Assert: doubling from Backoff.InitialDelay, capped at Backoff.MaxDelay, one query per delay.
        Assert.Equal([100, 200, 400, 800, 1000, 1000], schedule);
        Assert.Equal(6, harness.Observer.Errors.Count);
        Assert.All(harness.Observer.Errors, e =>
        {
            Assert.Contains(agent.Address, e.Message, StringComparison.Ordinal);
            Assert.Contains("GET " + HealthPath + " answered 500", e.Message, StringComparison.Ordinal);
        });
        Assert.Equal([7001], harness.Observer.Ports);
        Assert.Equal(7, agent.CountRequests(HealthPath));
    }

    [Fact]
    public async Task Watch_IndexGoesBackwards_ForgetsItListsAgainAndBlocksOnTheNewIndex()
    {
        // Arrange: the watch is parked on the agent's index.
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("a", "orders", "127.0.0.1", 7001);
        await using var harness = SourceHarness.Start(agent);
        var clock = harness.Recording;
        await Eventually.TrueAsync(() => harness.Observer.HasSet, s_timeout, "the list publishes");
        var firstIndex = agent.CurrentIndex;
        await ParkAsync(agent, clock, harness.Options);

        // Act: a snapshot restore moves the index back to 2; the parked query returns at once with it.
        agent.ResetIndex(2);
        var listPace = await clock.NextFiniteTimerAsync();
        clock.Advance(listPace);
        await ParkAsync(agent, clock, harness.Options);

        // Assert: read without an index (the reset), then block on the new index, never on the old one.
        Assert.Equal(s_minInterval, listPace);
        Assert.Equal([null, firstIndex, null, 2], agent.Requests.Where(r => r.Path == HealthPath).Select(r => r.Index));
        Assert.Contains(harness.Logs.Entries, e => e.EventId.Name == "ConsulIndexReset");
        Assert.Empty(harness.Observer.Errors);
        Assert.Equal([7001], harness.Observer.Ports);
    }

    [Fact]
    public async Task Watch_AgentAnswersIndexZeroAtOnce_BlocksOnIndexOneAndStartsQueriesAtTheMinimumInterval()
    {
        // Arrange: the known Consul bug: X-Consul-Index 0, no blocking.
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("a", "orders", "127.0.0.1", 7001);
        agent.BuggyZeroIndex = true;
        await using var harness = SourceHarness.Start(agent, o => o.MinQueryInterval = TimeSpan.FromMilliseconds(50));
        var clock = harness.Recording;
        await Eventually.TrueAsync(() => harness.Observer.HasSet, s_timeout, "the list publishes");

        // Act: each round answers at once; the next query waits out the minimum interval on the clock.
        var paces = new List<double>();
        for (var round = 1; round <= 4; round++)
        {
            Assert.Equal(ConsulEndpointSource.StallTimeoutOf(harness.Options), await clock.NextFiniteTimerAsync());
            var pace = await clock.NextFiniteTimerAsync();
            paces.Add(pace.TotalMilliseconds);
            clock.Advance(pace);
            var expected = round + 1;
            await Eventually.TrueAsync(() => agent.CountRequests(HealthPath) == expected, s_timeout, $"query {expected} is sent");
        }

        // Assert
        Assert.Equal([50, 50, 50, 50], paces);
        Assert.Equal([null, 1, 1, 1, 1], agent.Requests.Where(r => r.Path == HealthPath).Select(r => r.Index));
        Assert.Empty(harness.Observer.Errors);
        Assert.DoesNotContain(harness.Logs.Entries, e => e.EventId.Name == "ConsulIndexReset");
    }

    [Fact]
    public async Task Watch_ConnectionCut_ReportsNamingTheAgentAndResumesFromTheSameIndexAfterOneBackoffDelay()
    {
        // Arrange
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("a", "orders", "127.0.0.1", 7001);
        await using var harness = SourceHarness.Start(agent);
        var clock = harness.Recording;
        await Eventually.TrueAsync(() => harness.Observer.HasSet, s_timeout, "the list publishes");
        var index = agent.CurrentIndex;
        await ParkAsync(agent, clock, harness.Options);

        // Act
        Assert.Equal(1, agent.CutParkedQueries());
        var backoff = await clock.NextFiniteTimerAsync();
        clock.Advance(backoff);
        var stall = await clock.NextFiniteTimerAsync();
        await Eventually.TrueAsync(() => agent.ParkedQueries == 1, s_timeout, "the watch is parked again");

        // Assert: half of Backoff.InitialDelay (800 ms) with the jitter at a half; the 400 ms also cover the minimum
        // interval, so the query goes out at once, on the same index.
        Assert.Equal(TimeSpan.FromMilliseconds(400), backoff);
        Assert.Equal(ConsulEndpointSource.StallTimeoutOf(harness.Options), stall);
        Assert.False(clock.HasUnreadTimer);
        Assert.Equal([null, index, index], agent.Requests.Where(r => r.Path == HealthPath).Select(r => r.Index));
        var error = Assert.Single(harness.Observer.Errors);
        Assert.Contains($"Consul at {agent.Address}: GET {HealthPath} failed", error.Message, StringComparison.Ordinal);
        Assert.Single(harness.Observer.Sets);
    }

    [Fact]
    public async Task Watch_QueryOutlivesWaitJitterAndMargin_IsEndedAsStalledAndResumedFromTheSameIndex()
    {
        // Arrange: the next query the agent receives is held forever, whatever its wait.
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("a", "orders", "127.0.0.1", 7001);
        await using var harness = SourceHarness.Start(agent);
        var clock = harness.Recording;
        await Eventually.TrueAsync(() => harness.Observer.HasSet, s_timeout, "the list publishes");
        var index = agent.CurrentIndex;
        await ParkAsync(agent, clock, harness.Options);
        agent.InjectHealthFault(ConsulFault.Stall());
        agent.ReleaseParkedQueries();
        var stall = await clock.NextFiniteTimerAsync();
        var pace = await clock.NextFiniteTimerAsync();
        clock.Advance(pace);
        await Eventually.TrueAsync(() => agent.StalledQueries == 1, s_timeout, "the agent holds the query");

        // Act: up to the last tick of wait + wait/16 + the margin nothing happens; then the query is ended.
        clock.Advance(stall - pace - TimeSpan.FromTicks(1));
        var before = harness.Observer.Errors.Count;
        clock.Advance(TimeSpan.FromTicks(1));
        await Eventually.TrueAsync(() => agent.StalledQueries == 0 && agent.ParkedQueries == 1, s_timeout, "the stalled query is ended and the watch resumed");

        // Assert: 5 min wait + 18.75 s jitter + 20 ms minimum interval + 10 s request timeout.
        Assert.Equal(TimeSpan.FromSeconds(328.77), stall);
        Assert.Equal(0, before);
        var error = Assert.Single(harness.Observer.Errors);
        Assert.Contains($"Consul at {agent.Address}", error.Message, StringComparison.Ordinal);
        Assert.Contains("service 'orders'", error.Message, StringComparison.Ordinal);
        Assert.Contains("did not answer within 328.77 s", error.Message, StringComparison.Ordinal);
        Assert.Equal([null, index, index, index], agent.Requests.Where(r => r.Path == HealthPath).Select(r => r.Index));
        Assert.Equal([7001], harness.Observer.Ports);
    }

    /// <summary>Lets the next watch start (its stall timer, then the minimum interval) and waits until it is parked at the agent.</summary>
    private static async Task ParkAsync(FakeConsulAgent agent, RecordingTimeProvider clock, ConsulOptions options)
    {
        Assert.Equal(ConsulEndpointSource.StallTimeoutOf(options), await clock.NextFiniteTimerAsync());
        var pace = await clock.NextFiniteTimerAsync();
        Assert.Equal(options.MinQueryInterval, pace);
        clock.Advance(pace);
        await Eventually.TrueAsync(() => agent.ParkedQueries == 1, s_timeout, "the watch is parked at the agent");
    }
}
