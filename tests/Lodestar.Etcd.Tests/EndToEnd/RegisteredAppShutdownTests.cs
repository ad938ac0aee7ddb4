using System.Net;
using Lodestar.Discovery;
using Lodestar.Testing;
using Lodestar.Testing.Etcd;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lodestar.Etcd.Tests.EndToEnd;

/// <summary>An ASP.NET Core app that registers itself in a real etcd through Lodestar's registration hosting.</summary>
public sealed class RegisteredAppShutdownTests
{
    [Fact]
    public async Task GracefulStop_RegisteredApp_LeavesTheRegistryBeforeItStopsServing()
    {
        // Arrange: the app registers "orders" with its real bound address; another process-like client watches etcd.
        await using var etcd = await EtcdServer.StartAsync();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var logs = new CapturingLoggerProvider();
        builder.Logging.AddProvider(logs).SetMinimumLevel(LogLevel.Debug);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.Services.AddLodestarCore().AddEtcd(o => o.Address = etcd.ClientUrl);
        builder.Services.AddLodestarRegistration(o =>
        {
            o.ServiceName = "orders";
            o.InstanceId = "orders-1";
            o.Ttl = TimeSpan.FromSeconds(5);
        });
        builder.Services.AddLodestarServing(o => o.DrainDelay = TimeSpan.FromSeconds(2));
        await using var app = builder.Build();
        app.MapGet("/", () => "orders-1");
        app.MapLodestarHealth();
        await app.StartAsync();
        var address = app.Urls.Single().Replace("http://", "", StringComparison.Ordinal).TrimEnd('/');

        var watcherServices = new ServiceCollection().AddLogging();
        watcherServices.AddLodestarCore().AddEtcd(o => o.Address = etcd.ClientUrl);
        await using var watcher = watcherServices.BuildServiceProvider();
        var resolver = watcher.GetRequiredService<IEndpointResolver>();
        var sets = new List<int>();
        using var subscription = resolver.Watch("orders", "etcd", s => { lock (sets) { sets.Add(s.Count); } });
        await Eventually.TrueAsync(async () => (await resolver.GetEndpointsAsync("orders", "etcd")).Endpoints.Any(e => e.Address == address),
            TimeSpan.FromSeconds(10), "the app registered its bound address");
        using var http = new HttpClient { BaseAddress = new Uri("http://" + address) };

        // Act: a graceful stop, as SIGTERM would start it.
        var stopping = app.StopAsync();
        try
        {
            await Eventually.TrueAsync(async () => (await resolver.GetEndpointsAsync("orders", "etcd")).Count == 0, TimeSpan.FromSeconds(5), "the registration is removed");
        }
        catch (TimeoutException)
        {
            Assert.Fail("key=" + await etcd.GetAsync("orders/orders-1") + " set=" + (await resolver.GetEndpointsAsync("orders", "etcd")) + "\n" + string.Join("\n", logs.Entries.Select(e => e.Category + ": " + e.Message + " " + e.Exception)));
        }

        // Assert: once the registry no longer lists it, the app still answers (draining) and readiness says 503.
        Assert.False(stopping.IsCompleted, "the app must still be running when its registration disappears");
        using var stillServing = await http.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, stillServing.StatusCode);
        using var readiness = await http.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, readiness.StatusCode);
        await stopping;
        Assert.Null(await etcd.GetAsync("orders/orders-1"));
    }
}
