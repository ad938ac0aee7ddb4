// The "front" service: calls "orders" through Lodestar, which balances over the instances listed in configuration.
using Lodestar.Discovery;
using Microsoft.Extensions.Diagnostics.HealthChecks;

var builder = WebApplication.CreateBuilder(args);

// Lodestar with its configuration source: Lodestar:Services:orders:Endpoints in appsettings.json.
builder.Services.AddLodestar();
builder.Services.AddHttpClient("orders").AddLodestar();

builder.Services.AddLodestarServing();

// Ready once discovery knows at least one "orders" instance (answered from Lodestar's cache, no network call).
builder.Services.AddHealthChecks().AddCheck<OrdersDiscoveredCheck>("orders-discovered", tags: ["ready"]);

var app = builder.Build();
app.MapLodestarHealth();
app.MapLodestarMetrics();

app.MapGet("/", async (IHttpClientFactory clients, CancellationToken cancellationToken) =>
{
    var orders = clients.CreateClient("orders");
    var json = await orders.GetStringAsync("http://orders/orders/42", cancellationToken);
    return Results.Content(json, "application/json");
});

app.Run();

internal sealed class OrdersDiscoveredCheck(IEndpointResolver resolver) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var endpoints = await resolver.GetEndpointsAsync("orders", cancellationToken: cancellationToken);
        return endpoints.Count > 0 ? HealthCheckResult.Healthy($"{endpoints.Count} orders endpoints") : HealthCheckResult.Unhealthy("no orders endpoints");
    }
}
