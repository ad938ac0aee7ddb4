using System.Net;
using Lodestar.AspNetCore.Tests.Infrastructure;
using Lodestar.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.AspNetCore.Tests.Metrics;

public sealed class MetricsEndpointTests
{
    [Fact]
    public async Task MapLodestarMetrics_AfterLodestarClientTraffic_ServesLodestarInstrumentsInExpositionFormat()
    {
        // Arrange: the app itself calls a backend through Lodestar, so its own Lodestar meter has data.
        await using var backend = await TestBackend.StartAsync("orders-1");
        var registry = new MutableConfigurationSource();
        registry.Provider.SetEndpoints("orders", backend.Address);
        await using var app = await ServingApp.StartAsync(configure: b =>
        {
            ((IConfigurationBuilder)b.Configuration).Add(registry);
            b.Services.AddHttpClient("orders").AddLodestar();
        });
        var client = app.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        for (var i = 0; i < 3; i++)
        {
            (await client.GetAsync("http://orders/x")).EnsureSuccessStatusCode();
        }

        // Act
        using var scraper = new HttpClient();
        using var response = await scraper.GetAsync(app.Url + "/metrics");
        var text = await response.Content.ReadAsStringAsync();
        var families = ExpositionParser.Parse(text);

        // Assert
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType!.ToString());
        var attempts = families["lodestar_client_attempts_total"].Samples.Single();
        Assert.Equal(3, attempts.Value);
        Assert.Equal("orders", attempts.Labels["lodestar_service"]);
        Assert.Equal(backend.Address, attempts.Labels["lodestar_endpoint"]);
        Assert.Equal("success", attempts.Labels["lodestar_outcome"]);
        Assert.Equal(3, families["lodestar_client_requests_total"].Samples.Single().Value);
        Assert.Equal(3, families["lodestar_client_picks_total"].Samples.Single().Value);
        Assert.Equal("round-robin", families["lodestar_client_picks_total"].Samples.Single().Labels["lodestar_policy"]);
        Assert.Equal(3, families["lodestar_client_request_duration_seconds"].Samples.Single(s => s.Name.EndsWith("_count", StringComparison.Ordinal)).Value);
        Assert.Equal(1, families["lodestar_endpoints"].Samples.Single().Value);
        Assert.Equal(1, families["lodestar_discovery_updates_total"].Samples.Single().Value);
        Assert.True(families["lodestar_discovery_staleness_seconds"].Samples.Single().Value >= 0);
    }

    [Fact]
    public async Task MapLodestarMetrics_TwoAppsInOneProcess_EachExportsOnlyItsOwnMeters()
    {
        // Arrange
        await using var backend = await TestBackend.StartAsync("orders-1");
        var registry = new MutableConfigurationSource();
        registry.Provider.SetEndpoints("orders", backend.Address);
        await using var busy = await ServingApp.StartAsync(configure: b =>
        {
            ((IConfigurationBuilder)b.Configuration).Add(registry);
            b.Services.AddHttpClient("orders").AddLodestar();
        });
        await using var idle = await ServingApp.StartAsync(configure: b => b.Services.AddHttpClient("orders").AddLodestar());
        (await busy.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders").GetAsync("http://orders/x")).EnsureSuccessStatusCode();

        // Act
        using var scraper = new HttpClient();
        var idleFamilies = ExpositionParser.Parse(await scraper.GetStringAsync(idle.Url + "/metrics"));

        // Assert
        Assert.DoesNotContain("lodestar_client_attempts_total", idleFamilies.Keys);
    }
}
