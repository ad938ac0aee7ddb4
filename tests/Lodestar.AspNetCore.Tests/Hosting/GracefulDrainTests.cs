using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Lodestar.AspNetCore.Tests.Infrastructure;
using Lodestar.Registration;
using Lodestar.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.AspNetCore.Tests.Hosting;

public sealed class GracefulDrainTests
{
    [Fact]
    public async Task StopAsync_DuringDrain_ReadinessIs503AndRegistrationGoneWhileListenerStillAccepts()
    {
        // Arrange
        var registrar = new FakeRegistrar();
        await using var app = await ServingApp.StartAsync(configure: b =>
        {
            b.Services.AddLodestarServing(o => o.DrainDelay = TimeSpan.FromSeconds(1.5));
            b.Services.AddSingleton<IServiceRegistrar>(registrar);
            b.Services.AddLodestarRegistration(o => o.ServiceName = "orders");
        });
        await Eventually.TrueAsync(() => !registrar.Registered.IsEmpty, TimeSpan.FromSeconds(10), "the instance registers after start");
        var instanceId = registrar.Registered.Keys.Single();

        // An in-flight request that is still running when the listener closes.
        app.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var client = new HttpClient { BaseAddress = new Uri(app.Url) };
        var inFlight = client.GetAsync("/work");
        await Eventually.TrueAsync(() => app.InFlight == 1, TimeSpan.FromSeconds(10), "the held request reaches the app");

        // Probe readiness on fresh connections throughout the stop, as kubelet does.
        var probes = new ConcurrentQueue<(long Timestamp, HttpStatusCode? Status)>();
        using var stopProbing = new CancellationTokenSource();
        var prober = Task.Run(async () =>
        {
            for (var i = 0; i < 2000 && !stopProbing.IsCancellationRequested; i++)
            {
                var (status, _) = await app.GetFreshAsync("/readyz", TimeSpan.FromSeconds(2));
                probes.Enqueue((Stopwatch.GetTimestamp(), status));
                await Task.Delay(20);
            }
        });
        await Eventually.TrueAsync(() => probes.Any(p => p.Status == HttpStatusCode.OK), TimeSpan.FromSeconds(10), "readiness is 200 before the stop");

        // Act
        var stopStarted = Stopwatch.GetTimestamp();
        var stopping = app.App.StopAsync();
        await Eventually.TrueAsync(() => probes.Any(p => p.Status is null), TimeSpan.FromSeconds(15), "the listener closes after the drain delay");
        app.Gate.SetResult();
        var inFlightResponse = await inFlight;
        await stopping;
        await stopProbing.CancelAsync();
        await prober;

        // Assert
        var afterStop = probes.Where(p => p.Timestamp > stopStarted).ToList();
        var firstRefused = afterStop.First(p => p.Status is null).Timestamp;
        var served503 = afterStop.Where(p => p.Status == HttpStatusCode.ServiceUnavailable).ToList();
        Assert.NotEmpty(served503);
        Assert.DoesNotContain(afterStop, p => p.Status == HttpStatusCode.OK && p.Timestamp > served503[0].Timestamp);
        Assert.True(served503[^1].Timestamp < firstRefused, "readiness answered 503 while the listener was still accepting");
        var deregisteredAt = registrar.DeregisteredAt(instanceId);
        Assert.NotNull(deregisteredAt);
        Assert.True(deregisteredAt < served503[^1].Timestamp, "the registration was removed before the drain ended");
        Assert.Equal(HttpStatusCode.OK, inFlightResponse.StatusCode);
        Assert.Equal("app", await inFlightResponse.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task StopAsync_DrainDelay_KeepsServingNewConnectionsForTheDelay()
    {
        // Arrange
        await using var app = await ServingApp.StartAsync(configure: b => b.Services.AddLodestarServing(o => o.DrainDelay = TimeSpan.FromSeconds(1)));

        // Act
        var watch = Stopwatch.StartNew();
        var stopping = app.App.StopAsync();
        var duringDrain = await app.GetFreshAsync("/work");
        await stopping;
        watch.Stop();
        var afterStop = await app.GetFreshAsync("/work");

        // Assert
        Assert.Equal(HttpStatusCode.OK, duringDrain.Status);
        Assert.Null(afterStop.Status);
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(0.9), $"The stop took {watch.Elapsed}; the drain delay is 1 s.");
    }

    [Fact]
    public async Task StopAsync_ShutdownTimeoutShorterThanDrainDelay_StopsAtTheTimeoutAndLogsIt()
    {
        // Arrange
        await using var app = await ServingApp.StartAsync(configure: b =>
        {
            b.Services.AddLodestarServing(o => o.DrainDelay = TimeSpan.FromMinutes(1));
            b.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromMilliseconds(500));
        });

        // Act
        var watch = Stopwatch.StartNew();
        await app.App.StopAsync();
        watch.Stop();

        // Assert
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15), $"The stop took {watch.Elapsed}.");
        Assert.Contains(app.Logs.Entries, e => e.EventId.Name == "ShutdownTimeoutDuringDrain");
    }

    [Fact]
    public async Task StopApplication_AsOnSigterm_ReadinessTurns503AtOnceWhileLivenessStays200()
    {
        // Arrange
        await using var app = await ServingApp.StartAsync(configure: b => b.Services.AddLodestarServing(o => o.DrainDelay = TimeSpan.FromMilliseconds(200)));
        var lifetime = app.Services.GetRequiredService<Microsoft.Extensions.Hosting.IHostApplicationLifetime>();

        // Act: the console lifetime does exactly this on SIGTERM, before the host stops.
        lifetime.StopApplication();
        var ready = await app.GetFreshAsync("/readyz");
        var live = await app.GetFreshAsync("/healthz");
        await app.App.StopAsync();

        // Assert
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.Status);
        Assert.Equal("Draining", ready.Body);
        Assert.Equal(HttpStatusCode.OK, live.Status);
    }
}
