using System.Diagnostics;
using Lodestar.Resilience.Admission;
using Lodestar.Testing;
using Xunit.Abstractions;

namespace Lodestar.Tests.Resilience;

/// <summary>
/// End-to-end scenarios against real Kestrel backends on loopback: rolling update, crash, bad backend, retry storm,
/// registry outage and overload. Each is bounded in time; figures are written to the test output.
/// </summary>
[Collection(ScenarioCollection.Name)]
public sealed class ScenarioTests(ITestOutputHelper output)
{
    [Fact]
    public async Task RollingUpdate_EachBackendReplacedUnderLoad_NoFailedRequests()
    {
        // Arrange
        var backends = new List<TestBackend>();
        for (var i = 0; i < 5; i++)
        {
            backends.Add(await TestBackend.StartAsync($"v1-{i}"));
        }

        await using var host = ResilienceTestHost.Create();
        host.SetEndpoints(backends.Select(b => b.Address).ToArray());
        var client = host.CreateClient();
        var load = new LoadGenerator(client, requestsPerSecond: 300);
        var retired = new List<TestBackend>();
        try
        {
            // Act: replace every backend in turn while the load runs.
            load.Start(TimeSpan.FromSeconds(40));
            await Task.Delay(500);
            for (var i = 0; i < 5; i++)
            {
                var old = backends[i];
                host.SetEndpoints(backends.Where(b => b != old).Select(b => b.Address).ToArray());
                await Eventually.TrueAsync(() => host.FindStateAsync(old.Address).Result is null, TimeSpan.FromSeconds(5), "the removed endpoint leaves the balancer");
                await Task.Delay(400);
                await Eventually.TrueAsync(() => old.InFlight == 0, TimeSpan.FromSeconds(5), "in-flight requests of the removed endpoint finish");
                await old.StopAsync();
                retired.Add(old);
                var replacement = await TestBackend.StartAsync($"v2-{i}");
                backends[i] = replacement;
                host.SetEndpoints(backends.Select(b => b.Address).ToArray());
                await Eventually.TrueAsync(() => replacement.Requests > 0, TimeSpan.FromSeconds(5), "the replacement takes traffic");
                await Task.Delay(1200);
            }

            await load.StopAsync();

            // Assert
            output.WriteLine($"rolling update: {load.Total} requests, {load.Failed} failed; {load.Errors}");
            Assert.True(load.Total > 1500, $"load ran ({load.Total} requests)");
            Assert.Equal(0, load.Failed);
            Assert.All(backends, b => Assert.True(b.Requests > 0, $"{b.Name} served traffic"));
        }
        finally
        {
            await load.StopAsync();
            foreach (var backend in backends.Concat(retired))
            {
                await backend.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Crash_BackendKilledUnderLoad_NoFailedIdempotentRequestsAndEjectedQuickly()
    {
        // Arrange
        var backends = new List<TestBackend>();
        for (var i = 0; i < 5; i++)
        {
            backends.Add(await TestBackend.StartAsync($"b{i}"));
        }

        await using var host = ResilienceTestHost.Create(o =>
        {
            o.OutlierDetection.ConsecutiveGatewayFailures = 3;
            o.OutlierDetection.EnforcingConsecutiveGatewayFailures = 100;
        });
        host.SetEndpoints(backends.Select(b => b.Address).ToArray());
        var load = new LoadGenerator(host.CreateClient(), requestsPerSecond: 300);
        try
        {
            load.Start(TimeSpan.FromSeconds(20));
            await Eventually.TrueAsync(() => backends.All(b => b.Requests > 20), TimeSpan.FromSeconds(10), "every backend takes traffic");
            var victim = backends[2];
            var state = (await host.FindStateAsync(victim.Address))!;

            // Act
            var attemptsBefore = state.Requests;
            var clock = Stopwatch.StartNew();
            await victim.KillAsync();
            await Eventually.TrueAsync(() => state.IsEjected, TimeSpan.FromSeconds(5), "the crashed endpoint is ejected");
            var ejectionLatency = clock.Elapsed;
            var attemptsToDead = state.Requests - attemptsBefore;
            await Task.Delay(1500);
            var attemptsAfterEjection = state.Requests - attemptsBefore - attemptsToDead;
            await load.StopAsync();

            // Assert
            output.WriteLine($"crash: {load.Total} requests, {load.Failed} failed; ejected after {ejectionLatency.TotalMilliseconds:0} ms and {attemptsToDead} attempts to the dead endpoint; {attemptsAfterEjection} attempts after; {load.Errors}");
            Assert.Equal(0, load.Failed);
            Assert.True(attemptsToDead <= 3 + 8, $"the dead endpoint stops being picked within a few attempts (took {attemptsToDead})");
            Assert.Equal(0, attemptsAfterEjection);
        }
        finally
        {
            await load.StopAsync();
            foreach (var backend in backends)
            {
                await backend.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task BadBackend_Returns500_EjectedThenReturnsAndCallersSeeSuccess()
    {
        // Arrange
        var backends = new List<TestBackend>();
        for (var i = 0; i < 5; i++)
        {
            backends.Add(await TestBackend.StartAsync($"b{i}"));
        }

        var bad = backends[0];
        bad.Status = 500;
        await using var host = ResilienceTestHost.Create(o =>
        {
            o.Retry.RetryOnStatusCodes = [500, 502, 503, 504];
            o.OutlierDetection.Interval = TimeSpan.FromMilliseconds(100);
            o.OutlierDetection.BaseEjectionTime = TimeSpan.FromSeconds(1);
        });
        host.SetEndpoints(backends.Select(b => b.Address).ToArray());
        var load = new LoadGenerator(host.CreateClient(), requestsPerSecond: 300);
        try
        {
            // Act
            load.Start(TimeSpan.FromSeconds(20));
            await Eventually.TrueAsync(() => host.FindStateAsync(bad.Address).Result is { } s && s.IsEjected, TimeSpan.FromSeconds(5), "the bad endpoint is ejected");
            var state = (await host.FindStateAsync(bad.Address))!;
            var ejectedAt = Stopwatch.StartNew();
            var served = bad.Requests;
            await Eventually.TrueAsync(() => !state.IsEjected, TimeSpan.FromSeconds(5), "the bad endpoint returns after its ejection time");
            var ejectedFor = ejectedAt.Elapsed;
            var servedWhileEjected = bad.Requests - served;
            await Eventually.TrueAsync(() => state.IsEjected, TimeSpan.FromSeconds(5), "the still-bad endpoint is ejected again");
            await Task.Delay(1000);
            await load.StopAsync();

            // Assert
            var successRate = 100.0 * load.Succeeded / load.Total;
            output.WriteLine($"bad backend: {load.Total} requests, {load.Failed} failed, success {successRate:0.000} %; ejected for {ejectedFor.TotalMilliseconds:0} ms; served {servedWhileEjected} while ejected; {load.Errors}");
            Assert.True(successRate >= 99.9, $"success rate {successRate:0.000} %");
            Assert.True(ejectedFor >= TimeSpan.FromMilliseconds(800) && ejectedFor < TimeSpan.FromSeconds(4), $"ejected for {ejectedFor}");
            Assert.True(servedWhileEjected <= 8, $"an ejected endpoint takes no new traffic (served {servedWhileEjected})");
        }
        finally
        {
            await load.StopAsync();
            foreach (var backend in backends)
            {
                await backend.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task RetryStorm_AllBackendsReturn503_AttemptsStayWithinBudgetAndErrorsAreFast()
    {
        // Arrange
        var backends = new List<TestBackend>();
        for (var i = 0; i < 3; i++)
        {
            var backend = await TestBackend.StartAsync($"b{i}");
            backend.Status = 503;
            backends.Add(backend);
        }

        await using var host = ResilienceTestHost.Create(o => o.MaxAttempts = 3);
        host.SetEndpoints(backends.Select(b => b.Address).ToArray());
        var client = host.CreateClient();
        const int requests = 1000;
        var slowest = TimeSpan.Zero;
        var statuses = new int[requests];
        try
        {
            // Act: 1,000 requests from 8 callers, as fast as they come back.
            var next = -1;
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < requests)
                {
                    var started = Stopwatch.GetTimestamp();
                    using var response = await client.GetAsync($"http://{ResilienceTestHost.Service}/x");
                    statuses[i] = (int)response.StatusCode;
                    var elapsed = Stopwatch.GetElapsedTime(started);
                    lock (statuses)
                    {
                        slowest = elapsed > slowest ? elapsed : slowest;
                    }
                }
            }))).WaitAsync(TimeSpan.FromSeconds(60));
            var total = clock.Elapsed;

            // Assert: retries ≤ 20 % of requests + 3/s × 10 s, plus a little slack for the bucket boundaries.
            var attempts = backends.Sum(b => b.Requests);
            var ratio = attempts / (double)requests;
            output.WriteLine($"retry storm: {requests} requests, {attempts} attempts, ratio {ratio:0.000}; total {total.TotalMilliseconds:0} ms, slowest {slowest.TotalMilliseconds:0} ms");
            Assert.All(statuses, s => Assert.Equal(503, s));
            Assert.True(ratio <= 1.0 + 0.2 + (30.0 / requests) + 0.02, $"attempt ratio {ratio:0.000} within the retry budget");
            Assert.True(ratio >= 1.0, "every request made at least one attempt");
            Assert.True(slowest < TimeSpan.FromSeconds(3), $"errors come back fast (slowest {slowest})");
        }
        finally
        {
            foreach (var backend in backends)
            {
                await backend.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task RegistryOutage_SourceKeepsFailing_RequestsFlowToLastGoodSet()
    {
        // Arrange
        var backends = new List<TestBackend>();
        for (var i = 0; i < 3; i++)
        {
            backends.Add(await TestBackend.StartAsync($"b{i}"));
        }

        var flaky = new FlakySourceProvider(backends.Select(b => b.Address).ToList(), TimeSpan.FromMilliseconds(50));
        await using var host = ResilienceTestHost.Create(o => o.Source = "flaky", services: s => s.AddSourceProvider(flaky));
        var load = new LoadGenerator(host.CreateClient(), requestsPerSecond: 100);
        try
        {
            // Act: 30 s of load while the registry reports an error every 50 ms.
            load.Start(TimeSpan.FromSeconds(30));
            await Task.Delay(TimeSpan.FromSeconds(30));
            await load.StopAsync();

            // Assert
            output.WriteLine($"registry outage: {load.Total} requests, {load.Failed} failed, {flaky.Errors} source errors; {load.Errors}");
            Assert.True(flaky.Errors >= 100, $"the source kept failing ({flaky.Errors} errors)");
            Assert.True(load.Total > 1_000, $"load ran ({load.Total})");
            Assert.Equal(0, load.Failed);
            Assert.All(backends, b => Assert.True(b.Requests > 0));
        }
        finally
        {
            await load.StopAsync();
            foreach (var backend in backends)
            {
                await backend.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Overload_MoreConcurrentRequestsThanLimit_ExcessFailsFastNothingHangs()
    {
        // Arrange
        await using var backend = await TestBackend.StartAsync("slow");
        backend.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var host = ResilienceTestHost.Create(o =>
        {
            o.ConcurrencyLimit.MaxConcurrentRequests = 4;
            o.ConcurrencyLimit.MaxPendingRequests = 2;
        });
        host.SetEndpoints(backend.Address);
        var client = host.CreateClient();

        // Act: 20 requests at once while the backend holds every request.
        var clock = Stopwatch.StartNew();
        var calls = Enumerable.Range(0, 20).Select(_ => Task.Run(async () =>
        {
            using var response = await client.GetAsync($"http://{ResilienceTestHost.Service}/x");
            return (int)response.StatusCode;
        })).ToList();
        await Eventually.TrueAsync(() => calls.Count(c => c.IsCompleted) >= 14, TimeSpan.FromSeconds(10), "the excess fails fast");
        var failFast = clock.Elapsed;
        await Eventually.TrueAsync(() => backend.InFlight == 4, TimeSpan.FromSeconds(10), "the limit's requests reach the backend");
        var rejected = calls.Where(c => c.IsCompleted).ToList();
        backend.Gate.SetResult();
        await Task.WhenAll(calls.Select(c => c.ContinueWith(_ => { }, TaskScheduler.Default))).WaitAsync(TimeSpan.FromSeconds(10));

        // Assert
        output.WriteLine($"overload: {rejected.Count} rejected within {failFast.TotalMilliseconds:0} ms");
        Assert.Equal(14, rejected.Count);
        Assert.All(rejected, c => Assert.IsType<ServiceOverloadedException>(c.Exception?.InnerException));
        Assert.Equal(6, calls.Count(c => c.Status == TaskStatus.RanToCompletion && c.Result == 200));
        Assert.Equal(6, backend.Requests);
    }
}

/// <summary>Scenario tests run one at a time: they measure load and share two cores.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ScenarioCollection
{
    public const string Name = "Resilience scenarios";
}
