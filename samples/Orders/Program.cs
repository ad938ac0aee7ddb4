// The "orders" service: one instance per process. Run two of them on different ports (see samples/README.md).
using Microsoft.Extensions.Diagnostics.HealthChecks;

var builder = WebApplication.CreateBuilder(args);

// /healthz, /readyz, /metrics and the graceful drain; options bind from Lodestar:Serving (appsettings.json).
builder.Services.AddLodestarServing();

// Readiness runs the checks tagged "ready". A real service would check its database here.
builder.Services.AddHealthChecks().AddCheck("self", () => HealthCheckResult.Healthy(), tags: ["ready"]);

// With a registrar in the container (Consul or etcd), this instance would also register itself once listening:
// builder.Services.AddLodestarRegistration(o => o.ServiceName = "orders");

var app = builder.Build();
app.MapLodestarHealth();
app.MapLodestarMetrics();

var instance = app.Configuration["Instance"] ?? "orders";
app.MapGet("/orders/{id:int}", (int id) => TypedResults.Ok(new Order(id, "shipped", instance)));

app.Run();

internal sealed record Order(int Id, string Status, string ServedBy);
