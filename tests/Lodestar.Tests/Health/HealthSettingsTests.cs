using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Health;
using Lodestar.Health.Internal;
using Lodestar.Http;
using Lodestar.Resilience.Internal;
using Lodestar.Testing;
using Lodestar.Tests.Resilience;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Tests.Health;

/// <summary>Per-service health settings, per-client overrides and the merge rule between them.</summary>
public sealed class HealthSettingsTests
{
    [Fact]
    public void Merge_ClientSetsOneProperty_ItWinsAndEveryOtherComesFromTheService()
    {
        // Arrange
        var service = new OutlierDetectionOptions { ConsecutiveServerErrors = 2, BaseEjectionTime = TimeSpan.FromSeconds(7) };
        var client = new OutlierDetectionOptions { ConsecutiveServerErrors = 9 };

        // Act
        var merged = HealthSettings.Merge(service, new HealthCheckOptions(), new CircuitBreakerOptions(), client, new HealthCheckOptions(), new CircuitBreakerOptions());

        // Assert
        Assert.Equal(9, merged.Outlier.ConsecutiveServerErrors);
        Assert.Equal(TimeSpan.FromSeconds(7), merged.Outlier.BaseEjectionTime);
        Assert.Equal(10, merged.Outlier.MaxEjectionPercent);
    }

    [Fact]
    public void Merge_ClientSetsADefaultValueExplicitly_ItStillWins()
    {
        // The service turns breakers on; the client turns them off by setting the default value itself.
        var merged = HealthSettings.Merge(new OutlierDetectionOptions(), new HealthCheckOptions(), new CircuitBreakerOptions { Enabled = true },
            null, null, new CircuitBreakerOptions { Enabled = false });

        Assert.False(merged.Breaker.Enabled);
    }

    [Fact]
    public void Merge_SameEffectiveValuesFromDifferentPlaces_EqualKeys()
    {
        var fromService = HealthSettings.Merge(new OutlierDetectionOptions { ConsecutiveServerErrors = 3 }, new HealthCheckOptions(), new CircuitBreakerOptions(), null, null, null);
        var fromClient = HealthSettings.Merge(new OutlierDetectionOptions(), new HealthCheckOptions(), new CircuitBreakerOptions(),
            new OutlierDetectionOptions { ConsecutiveServerErrors = 3 }, null, null);

        Assert.Equal(fromService, fromClient);
        Assert.Equal(fromService.Key, fromClient.Key);
        Assert.NotEqual(fromService, HealthSettings.Merge(new OutlierDetectionOptions(), new HealthCheckOptions(), new CircuitBreakerOptions(), null, null, null));
    }

    [Fact]
    public void Resolve_ServiceAndClientSectionsInConfiguration_PropertyByPropertyMerge()
    {
        // Arrange
        using var provider = Build(new Dictionary<string, string?>
        {
            ["Lodestar:Services:orders:OutlierDetection:ConsecutiveServerErrors"] = "2",
            ["Lodestar:Services:orders:OutlierDetection:MaxEjectionPercent"] = "40",
            ["Lodestar:Services:orders:CircuitBreaker:Enabled"] = "true",
            ["Lodestar:Services:orders:HealthChecks:Path"] = "/ready",
            ["Lodestar:Clients:a:OutlierDetection:ConsecutiveServerErrors"] = "7",
        }, "a", "b");
        var registry = provider.GetRequiredService<HealthRegistry>();
        var clients = provider.GetRequiredService<IOptionsMonitor<LodestarClientOptions>>();

        // Act
        var a = registry.Resolve("orders", clients.Get("a"), "a");
        var b = registry.Resolve("orders", clients.Get("b"), "b");
        var otherService = registry.Resolve("billing", clients.Get("b"), "b");

        // Assert
        Assert.Equal(7, a.Outlier.ConsecutiveServerErrors);
        Assert.Equal(2, b.Outlier.ConsecutiveServerErrors);
        Assert.All(new[] { a, b }, s => Assert.Equal(40, s.Outlier.MaxEjectionPercent));
        Assert.All(new[] { a, b }, s => Assert.True(s.Breaker.Enabled));
        Assert.Equal("/ready", b.Checks.Path);
        Assert.Equal(5, otherService.Outlier.ConsecutiveServerErrors);
        Assert.False(otherService.Breaker.Enabled);
    }

    [Fact]
    public void Resolve_ServiceSettingsInCode_ApplyToThatServiceOnly()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddLodestar();
        services.Configure<CircuitBreakerOptions>("orders", o => o.Enabled = true);
        using var provider = services.BuildServiceProvider();
        var registry = provider.GetRequiredService<HealthRegistry>();

        Assert.True(registry.Resolve("orders", null).Breaker.Enabled);
        Assert.False(registry.Resolve("billing", null).Breaker.Enabled);
    }

    [Fact]
    public void Startup_BadServiceSetting_FailsNamingServiceAndProperty()
    {
        using var provider = Build(new Dictionary<string, string?> { ["Lodestar:Services:orders:OutlierDetection:MaxEjectionPercent"] = "150" });

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<LodestarOptions>>().Value);

        Assert.Contains(error.Failures, f => f.Contains("service 'orders'", StringComparison.Ordinal) && f.Contains("MaxEjectionPercent is 150", StringComparison.Ordinal));
    }

    [Fact]
    public void Resolve_MergedSettingsInconsistent_FailsNamingClientServiceAndProperty()
    {
        // Arrange: the service caps ejections at 20 s; the client asks for a 60 s base ejection time.
        using var provider = Build(new Dictionary<string, string?>
        {
            ["Lodestar:Services:orders:OutlierDetection:MaxEjectionTime"] = "00:00:20",
            ["Lodestar:Services:orders:OutlierDetection:BaseEjectionTime"] = "00:00:10",
            ["Lodestar:Clients:a:OutlierDetection:BaseEjectionTime"] = "00:01:00",
            ["Lodestar:Clients:a:OutlierDetection:MaxEjectionTime"] = "00:02:00",
            ["Lodestar:Clients:b:OutlierDetection:BaseEjectionTime"] = "00:01:00",
        }, "a", "b");
        var clients = provider.GetRequiredService<IOptionsMonitor<LodestarClientOptions>>();
        var registry = provider.GetRequiredService<HealthRegistry>();

        // Act
        var fine = registry.Resolve("orders", clients.Get("a"), "a");
        var error = Assert.Throws<OptionsValidationException>(() => registry.Resolve("orders", clients.Get("b"), "b"));

        // Assert
        Assert.Equal(TimeSpan.FromMinutes(1), fine.Outlier.BaseEjectionTime);
        Assert.Contains(error.Failures, f => f.Contains("client 'b'", StringComparison.Ordinal) && f.Contains("service 'orders'", StringComparison.Ordinal)
                                             && f.Contains("MaxEjectionTime", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ConfigurationSource_ServiceWithOnlyHealthSettingsThere_IsLeftToTheSourceThatServesIt()
    {
        // Arrange: "orders" has settings under Lodestar:Services but its endpoints come from another source.
        var handler = new ScriptedHandler(_ => ScriptedHandler.Status(200));
        await using var host = ResilienceTestHost.Create(primaryHandler: handler,
            services: s => s.AddSourceProvider(new StaticSourceProvider("registry", "127.0.0.1:9301")),
            settings: [new("Lodestar:Services:orders:OutlierDetection:ConsecutiveServerErrors", "3")]);

        // Act
        using var response = await host.CreateClient().GetAsync("http://orders/x");

        // Assert
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("127.0.0.1:9301", handler.Calls.Single().Authority);
        Assert.Equal(3, (await host.GetBalancerAsync()).Stage.Settings.Outlier.ConsecutiveServerErrors);
    }

    private static ServiceProvider Build(Dictionary<string, string?> settings, params string[] clients)
    {
        var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(settings).Build())
            .AddLogging();
        services.AddLodestar();
        foreach (var client in clients)
        {
            services.AddHttpClient(client).AddLodestar();
        }

        return services.BuildServiceProvider();
    }

    private sealed class StaticSourceProvider(string name, string address) : IEndpointSourceProvider
    {
        public string Name => name;

        public bool TryCreateSource(string serviceName, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IEndpointSource? source)
        {
            source = new Source(address);
            return true;
        }

        private sealed class Source(string address) : IEndpointSource
        {
            public Task RunAsync(IEndpointObserver observer, CancellationToken cancellationToken)
            {
                var port = int.Parse(address.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture);
                observer.OnEndpoints([DiscoveredEndpoint.Create("127.0.0.1", port)]);
                return Task.Delay(Timeout.Infinite, cancellationToken).ContinueWith(static _ => { }, TaskScheduler.Default);
            }
        }
    }
}
