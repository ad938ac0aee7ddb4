using Lodestar.Discovery;
using Lodestar.Discovery.Internal;
using Lodestar.Endpoints;
using Lodestar.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Tests.Discovery;

/// <summary>What the endpoint watcher logs about registry outages and endpoint-set changes.</summary>
public sealed class EndpointWatcherLogTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task OnFailure_OutageOfTwoAndAHalfMinutes_WarnsOnceThenAtMostOncePerMinuteAndLogsRecovery()
    {
        // Arrange
        var clock = new FakeTimeProvider();
        var logs = new CapturingLoggerProvider();
        await using var watcher = new EndpointWatcher("orders", "consul", new IdleSource(), clock, logs.CreateLogger("watcher"));
        IEndpointObserver observer = watcher;
        IReconnectObserver loop = watcher;
        observer.OnEndpoints([DiscoveredEndpoint.Create("10.0.0.1", 80)]);
        var errors = new List<Exception>();
        using var subscription = watcher.Subscribe(_ => { }, errors.Add);

        // Act: a failure every 10 s from 0 to 150 s (16 failures), then the source makes progress again.
        for (var second = 0; second <= 150; second += 10)
        {
            loop.OnFailure(new HttpRequestException($"Consul agent at http://127.0.0.1:8500 refused the connection (try at {second} s)"));
            clock.Advance(TimeSpan.FromSeconds(10));
        }

        loop.OnProgress();
        loop.OnProgress();

        // Assert
        var warnings = logs.Entries.Where(e => e.Level == LogLevel.Warning).ToList();
        Assert.Equal(["SourceError", "SourceStillFailing", "SourceStillFailing"], warnings.Select(e => e.EventId.Name));
        Assert.Contains("(try at 0 s)", warnings[0].Message, StringComparison.Ordinal);
        Assert.Contains("failing for 60 s (7 failures, 5 not logged since the last warning)", warnings[1].Message, StringComparison.Ordinal);
        Assert.Contains("(try at 60 s)", warnings[1].Message, StringComparison.Ordinal);
        Assert.Contains("failing for 120 s (13 failures, 5 not logged", warnings[2].Message, StringComparison.Ordinal);
        Assert.Contains("version 1, 1 endpoints", warnings[2].Message, StringComparison.Ordinal);
        Assert.Equal(13, logs.Entries.Count(e => e.EventId.Name == "SourceFailureRepeated" && e.Level == LogLevel.Debug));
        var recovered = Assert.Single(logs.Entries, e => e.EventId.Name == "SourceRecovered");
        Assert.Equal(LogLevel.Information, recovered.Level);
        Assert.Contains("recovered after 160 s and 16 failures", recovered.Message, StringComparison.Ordinal);
        Assert.Equal(16, errors.Count);
        Assert.Same(errors[^1], watcher.LastError);
    }

    [Fact]
    public async Task OnFailure_SecondOutageAfterRecovery_WarnsAgainAtOnce()
    {
        // Arrange
        var clock = new FakeTimeProvider();
        var logs = new CapturingLoggerProvider();
        await using var watcher = new EndpointWatcher("orders", "etcd", new IdleSource(), clock, logs.CreateLogger("watcher"));
        IReconnectObserver loop = watcher;

        // Act
        loop.OnFailure(new InvalidOperationException("etcd at 127.0.0.1:2379: unavailable"));
        clock.Advance(TimeSpan.FromSeconds(5));
        ((IEndpointObserver)watcher).OnEndpoints([DiscoveredEndpoint.Create("10.0.0.1", 80)]);
        clock.Advance(TimeSpan.FromSeconds(5));
        loop.OnFailure(new InvalidOperationException("etcd at 127.0.0.1:2379: unavailable again"));

        // Assert
        Assert.Equal(["SourceErrorBeforeFirstSet", "SourceError"], logs.Entries.Where(e => e.Level == LogLevel.Warning).Select(e => e.EventId.Name));
        Assert.Contains("recovered after 5 s and 1 failures", Assert.Single(logs.Entries, e => e.EventId.Name == "SourceRecovered").Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OnError_SkippedEntriesAreNotAnOutage_EachLoggedAndNoRecovery()
    {
        // Arrange
        var clock = new FakeTimeProvider();
        var logs = new CapturingLoggerProvider();
        await using var watcher = new EndpointWatcher("orders", "configuration", new IdleSource(), clock, logs.CreateLogger("watcher"));
        IEndpointObserver observer = watcher;

        // Act
        observer.OnError(new FormatException("entry 2 of 'Lodestar:Services:orders:Endpoints' is not an address"));
        ((IReconnectObserver)watcher).OnProgress();
        observer.OnError(new FormatException("entry 3 of 'Lodestar:Services:orders:Endpoints' is not an address"));

        // Assert
        Assert.Equal(2, logs.Entries.Count(e => e.Level == LogLevel.Warning));
        Assert.DoesNotContain(logs.Entries, e => e.EventId.Name == "SourceRecovered");
    }

    [Fact]
    public async Task Run_ListFailsNineTimesInARow_LoopFailuresAreOneOutageWithTwoWarningsAndARecovery()
    {
        // Arrange: the backoff with its jitter fixed at 1: 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30, 30, 30 s.
        var clock = new RecordingTimeProvider();
        var logs = new CapturingLoggerProvider();
        var source = new FailingThenListingSource(clock, failures: 9);
        await using var watcher = new EndpointWatcher("orders", "consul", source, clock, logs.CreateLogger("watcher"));

        // Act
        watcher.Start();
        for (var i = 0; i < 9; i++)
        {
            clock.Advance(await clock.NextFiniteTimerAsync().WaitAsync(s_wait));
        }

        var set = await watcher.GetAsync(s_wait, CancellationToken.None).AsTask().WaitAsync(s_wait);

        // Assert: failures at 0, 0.8, 2.4, 5.6, 12, 24.8, 50.4, 80.4 and 110.4 s; the list succeeds at 140.4 s.
        Assert.Equal(1, set.Count);
        var warnings = logs.Entries.Where(e => e.Level == LogLevel.Warning).ToList();
        Assert.Equal(["SourceErrorBeforeFirstSet", "SourceStillFailing"], warnings.Select(e => e.EventId.Name));
        Assert.Contains("failing for 80 s (8 failures, 6 not logged", warnings[1].Message, StringComparison.Ordinal);
        Assert.Contains("recovered after 140.4 s and 9 failures", Assert.Single(logs.Entries, e => e.EventId.Name == "SourceRecovered").Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OnEndpoints_SetChanges_LogNamesAddedAndRemovedAddressesBounded()
    {
        // Arrange
        var logs = new CapturingLoggerProvider();
        await using var watcher = new EndpointWatcher("orders", "dns", new IdleSource(), new FakeTimeProvider(), logs.CreateLogger("watcher"));
        IEndpointObserver observer = watcher;
        var first = Enumerable.Range(1, 3).Select(i => DiscoveredEndpoint.Create("10.0.0." + i, 8080)).ToList();
        var second = first.Skip(1).Concat(Enumerable.Range(1, 13).Select(i => DiscoveredEndpoint.Create("10.0.1." + i, 8080))).ToList();

        // Act
        observer.OnEndpoints(first);
        observer.OnEndpoints(second);

        // Assert
        var changes = logs.Entries.Where(e => e.EventId.Name == "EndpointsChanged").Select(e => e.Message).ToList();
        Assert.Equal(2, changes.Count);
        Assert.Contains("version 1: 3 endpoints; 3 added [10.0.0.1:8080, 10.0.0.2:8080, 10.0.0.3:8080], 0 removed [].", changes[0], StringComparison.Ordinal);
        Assert.Contains("version 2: 15 endpoints; 13 added [10.0.1.1:8080, 10.0.1.2:8080, 10.0.1.3:8080, 10.0.1.4:8080, 10.0.1.5:8080, "
            + "10.0.1.6:8080, 10.0.1.7:8080, 10.0.1.8:8080, 10.0.1.9:8080, 10.0.1.10:8080, +3 more], 1 removed [10.0.0.1:8080].", changes[1], StringComparison.Ordinal);
        Assert.DoesNotContain("10.0.1.11", changes[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetAsync_NoSetBeforeTimeout_ThrowsHttpRequestExceptionNamingServiceSourceAndLastError()
    {
        // Arrange
        var clock = new FakeTimeProvider();
        await using var watcher = new EndpointWatcher("orders", "consul", new IdleSource(), clock, new CapturingLoggerProvider().CreateLogger("watcher"));
        ((IReconnectObserver)watcher).OnFailure(new HttpRequestException("Consul agent at http://127.0.0.1:8500 refused the connection"));

        // Act
        var pending = watcher.GetAsync(TimeSpan.FromSeconds(5), CancellationToken.None).AsTask();
        clock.Advance(TimeSpan.FromSeconds(5));
        var error = await Assert.ThrowsAnyAsync<HttpRequestException>(() => pending.WaitAsync(s_wait));

        // Assert: callers that handle a failed DNS lookup of an HttpClient request handle this too.
        Assert.IsType<EndpointResolutionException>(error);
        Assert.Equal(HttpRequestError.NameResolutionError, error.HttpRequestError);
        Assert.Equal("No endpoints for service 'orders' arrived from source 'consul' within 5 s. Last error: Consul agent at http://127.0.0.1:8500 refused the connection",
            error.Message);
    }

    /// <summary>A source whose loop is never started.</summary>
    private sealed class IdleSource : IEndpointSource
    {
        public Task RunAsync(IEndpointObserver observer, CancellationToken cancellationToken) => Task.Delay(Timeout.Infinite, cancellationToken);
    }

    /// <summary>Lists fail <c>failures</c> times, then one endpoint is listed and the watch waits.</summary>
    private sealed class FailingThenListingSource(TimeProvider clock, int failures)
        : ListWatchEndpointSource<int>("orders", new BackoffOptions(), clock, null, static () => 1.0)
    {
        private int _lists;

        protected override Task<int> ListAsync(WatchContext<int> context, CancellationToken cancellationToken)
        {
            if (++_lists <= failures)
            {
                throw new HttpRequestException($"registry at http://127.0.0.1:1 refused list {_lists}");
            }

            context.Publish([DiscoveredEndpoint.Create("10.0.0.1", 80)]);
            return Task.FromResult(1);
        }

        protected override async Task<WatchOutcome> WatchAsync(int cursor, WatchContext<int> context, CancellationToken cancellationToken)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return WatchOutcome.Continue;
        }
    }
}
