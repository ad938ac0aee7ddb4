using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Lodestar.AspNetCore.Tests.Infrastructure;
using Lodestar.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.AspNetCore.Tests.Health;

public sealed class HealthEndpointTests
{
    [Fact]
    public async Task Liveness_DependencyFailing_Returns200WithoutCallingAnyCheck()
    {
        // Arrange
        var dependency = new SwitchableCheck { Healthy = false };
        await using var app = await ServingApp.StartAsync(configure: b =>
            b.Services.AddHealthChecks().AddCheck("db", dependency, tags: ["ready"]).AddCheck("other", dependency));

        // Act
        var statuses = new List<HttpStatusCode?>();
        for (var i = 0; i < 5; i++)
        {
            statuses.Add((await app.GetFreshAsync("/healthz")).Status);
        }

        // Assert
        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Equal(0, dependency.Calls);
    }

    [Fact]
    public async Task Readiness_DependencyStartsFailing_Returns503OnTheNextProbeWithPerCheckJson()
    {
        // Arrange
        var dependency = new SwitchableCheck { Healthy = true };
        await using var app = await ServingApp.StartAsync(configure: b =>
        {
            b.Services.AddLodestarServing(o => o.CacheDuration = TimeSpan.Zero);
            b.Services.AddHealthChecks().AddCheck("db", dependency, tags: ["ready"]);
        });
        var before = await app.GetFreshAsync("/readyz");

        // Act
        dependency.Healthy = false;
        var after = await app.GetFreshAsync("/readyz?verbose");

        // Assert
        Assert.Equal(HttpStatusCode.OK, before.Status);
        Assert.Equal("Healthy", before.Body);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, after.Status);
        using var json = JsonDocument.Parse(after.Body);
        Assert.Equal("Unhealthy", json.RootElement.GetProperty("status").GetString());
        Assert.False(json.RootElement.GetProperty("ready").GetBoolean());
        var db = json.RootElement.GetProperty("checks").GetProperty("db");
        Assert.Equal("Unhealthy", db.GetProperty("status").GetString());
        Assert.Equal("db is down", db.GetProperty("description").GetString());
    }

    [Fact]
    public async Task Readiness_CheckHangsIgnoringItsToken_Returns503AtItsDeadline()
    {
        // Arrange
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var app = await ServingApp.StartAsync(configure: b =>
        {
            b.Services.AddLodestarServing(o => o.CheckTimeout = TimeSpan.FromMilliseconds(300));
            b.Services.AddHealthChecks()
                .AddCheck("fast", () => HealthCheckResult.Healthy(), tags: ["ready"])
                .AddAsyncCheck("stuck", async () =>
                {
                    await release.Task; // ignores cancellation on purpose
                    return HealthCheckResult.Healthy();
                }, tags: ["ready"]);
        });

        try
        {
            // Act
            var watch = Stopwatch.StartNew();
            var result = await app.GetFreshAsync("/readyz?verbose");
            watch.Stop();

            // Assert
            Assert.Equal(HttpStatusCode.ServiceUnavailable, result.Status);
            using var json = JsonDocument.Parse(result.Body);
            var checks = json.RootElement.GetProperty("checks");
            Assert.Equal("Healthy", checks.GetProperty("fast").GetProperty("status").GetString());
            Assert.Equal("Unhealthy", checks.GetProperty("stuck").GetProperty("status").GetString());
            Assert.Contains("Timed out", checks.GetProperty("stuck").GetProperty("description").GetString());
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(8), $"The probe took {watch.Elapsed}; the deadline is 300 ms.");
        }
        finally
        {
            release.TrySetResult();
        }
    }

    [Fact]
    public async Task Readiness_CheckThrows_Returns503WithoutTheExceptionText()
    {
        // Arrange
        await using var app = await ServingApp.StartAsync(configure: b => b.Services.AddHealthChecks()
            .AddCheck("db", () => throw new InvalidOperationException("password=hunter2"), tags: ["ready"]));

        // Act
        var result = await app.GetFreshAsync("/readyz?verbose");

        // Assert
        Assert.Equal(HttpStatusCode.ServiceUnavailable, result.Status);
        Assert.DoesNotContain("hunter2", result.Body);
        Assert.Contains("InvalidOperationException", result.Body);
    }

    [Fact]
    public async Task Readiness_CheckWithoutReadyTag_IsNotRun()
    {
        // Arrange
        var untagged = new SwitchableCheck { Healthy = false };
        await using var app = await ServingApp.StartAsync(configure: b => b.Services.AddHealthChecks().AddCheck("startup-only", untagged));

        // Act
        var result = await app.GetFreshAsync("/readyz");

        // Assert
        Assert.Equal(HttpStatusCode.OK, result.Status);
        Assert.Equal(0, untagged.Calls);
    }

    [Fact]
    public async Task Readiness_ProbeStorm_RunsChecksOncePerCacheWindow()
    {
        // Arrange
        var clock = new FakeTimeProvider();
        var dependency = new SwitchableCheck { Healthy = true };
        await using var app = await ServingApp.StartAsync(configure: b =>
        {
            b.Services.AddSingleton<TimeProvider>(clock);
            b.Services.AddLodestarServing(o => o.CacheDuration = TimeSpan.FromSeconds(1));
            b.Services.AddHealthChecks().AddCheck("db", dependency, tags: ["ready"]);
        });
        using var client = new HttpClient { BaseAddress = new Uri(app.Url) };

        // Act: storms of 50 concurrent probes, each in a new cache window. Probes that arrive just as an evaluation
        // finishes must take its result, not start another.
        var callsPerStorm = new List<int>();
        for (var round = 0; round < 20; round++)
        {
            var before = dependency.Calls;
            var storm = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => client.GetAsync("/readyz")));
            Assert.All(storm, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
            callsPerStorm.Add(dependency.Calls - before);
            clock.Advance(TimeSpan.FromSeconds(2));
        }

        // Assert
        Assert.All(callsPerStorm, calls => Assert.Equal(1, calls));
    }

    [Fact]
    public async Task MapLodestarHealth_CustomPaths_ServesThemAndNotTheDefaults()
    {
        // Arrange
        await using var app = await ServingApp.StartAsync(configure: b => b.Services.AddLodestarServing(o =>
        {
            o.LivenessPath = "/live";
            o.ReadinessPath = "/ready";
        }));

        // Act
        var live = await app.GetFreshAsync("/live");
        var ready = await app.GetFreshAsync("/ready");
        var oldPath = await app.GetFreshAsync("/healthz");

        // Assert
        Assert.Equal(HttpStatusCode.OK, live.Status);
        Assert.Equal(HttpStatusCode.OK, ready.Status);
        Assert.Equal(HttpStatusCode.NotFound, oldPath.Status);
    }

    private sealed class SwitchableCheck : IHealthCheck
    {
        private int _calls;

        public volatile bool Healthy;

        public int Calls => Volatile.Read(ref _calls);

        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _calls);
            return Task.FromResult(Healthy ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("db is down"));
        }
    }
}
