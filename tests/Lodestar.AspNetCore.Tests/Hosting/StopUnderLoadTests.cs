using System.Net;
using Lodestar.AspNetCore.Tests.Infrastructure;
using Lodestar.Registration;
using Lodestar.Testing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Lodestar.AspNetCore.Tests.Hosting;

public sealed class StopUnderLoadTests(ITestOutputHelper output)
{
    /// <summary>
    /// Two instances of <c>orders</c>; a Lodestar client sends a steady load to both while one stops gracefully. The
    /// registry (configuration here) drops the stopping instance shortly after it deregisters, as a Consul or etcd watch
    /// would. The client does not retry, so only the drain can keep failures at zero: with a drain delay of 0 the same
    /// test sees refused connections (about a third of the requests in the stop window).
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task StopAsync_OneOfTwoInstancesUnderLoad_ClientSeesZeroFailedRequests(int httpVersion)
    {
        // Arrange
        var protocols = httpVersion == 2 ? HttpProtocols.Http2 : HttpProtocols.Http1;
        var registry = new MutableConfigurationSource();
        var registrarA = new FakeRegistrar();
        await using var b = await ServingApp.StartAsync("b", protocols: protocols);
        await using var a = await ServingApp.StartAsync("a", protocols: protocols, configure: builder =>
        {
            builder.Services.AddLodestarServing(o => o.DrainDelay = TimeSpan.FromSeconds(1));
            builder.Services.AddSingleton<IServiceRegistrar>(registrarA);
            builder.Services.AddLodestarRegistration(o => o.ServiceName = "orders");
        });
        a.WorkDelay = b.WorkDelay = TimeSpan.FromMilliseconds(10);
        registry.Provider.SetEndpoints("orders", a.Address, b.Address);
        // The registry's watchers see the deregistration a little later, as real ones do; the drain delay covers that.
        Task? propagation = null;
        registrarA.OnDeregister = (_, _) =>
        {
            propagation = Task.Run(async () =>
            {
                await Task.Delay(300);
                registry.Provider.SetEndpoints("orders", b.Address);
            });
            return Task.CompletedTask;
        };

        var services = new ServiceCollection();
        services.AddLogging(l => l.SetMinimumLevel(LogLevel.Warning));
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().Add(registry).Build());
        services.AddLodestar();
        services.AddHttpClient("orders", c =>
        {
            c.DefaultRequestVersion = new Version(httpVersion, 0);
            c.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        }).AddLodestar(o => o.MaxAttempts = 1); // no retry: the drain alone must avoid every failure
        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<IHttpClientFactory>().CreateClient("orders");

        // Act: 4 workers, each bounded in count, while instance a stops in the middle.
        var failures = 0;
        var successes = 0;
        var errors = new List<string>();
        using var stop = new CancellationTokenSource();
        var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < 5000 && !stop.IsCancellationRequested; i++)
            {
                try
                {
                    using var response = await client.GetAsync("http://orders/work");
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        Interlocked.Increment(ref successes);
                        continue;
                    }

                    lock (errors)
                    {
                        errors.Add(((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture));
                    }
                }
                catch (Exception ex)
                {
                    lock (errors)
                    {
                        errors.Add(ex.GetType().Name + ": " + ex.Message);
                    }
                }

                Interlocked.Increment(ref failures);
            }
        })).ToArray();

        await Eventually.TrueAsync(() => a.Served > 20 && b.Served > 20, TimeSpan.FromSeconds(20), "both instances take traffic");
        var inFlightOnAAtStop = a.InFlight;
        var servedByABeforeStop = a.Served;
        await a.App.StopAsync();
        var servedByA = a.Served;
        var servedByBAtStop = b.Served;
        await Eventually.TrueAsync(() => b.Served > servedByBAtStop + 50, TimeSpan.FromSeconds(20), "traffic goes on to b after a stopped");
        await stop.CancelAsync();
        await Task.WhenAll(workers);
        await propagation!;

        // Assert
        Assert.True(failures == 0, $"{failures} failed requests of {successes + failures}: {string.Join(" | ", errors.Distinct().Take(5))}");
        output.WriteLine($"HTTP/{httpVersion}: {successes} succeeded, {failures} failed; a served {servedByA} ({servedByA - servedByABeforeStop} after its stop began, {inFlightOnAAtStop} in flight then), b served {b.Served}.");
        Assert.True(servedByA > servedByABeforeStop, "a kept serving while clients still sent to it during the drain");
        Assert.Equal(0, a.InFlight);
        Assert.True(successes > 100, $"only {successes} requests completed");
    }
}
