using System.Diagnostics;
using System.Net;
using Lodestar.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Lodestar.AspNetCore.Tests.Diagnostics;

/// <summary>The OpenTelemetry setup of docs/observability.md, in an ASP.NET Core app, with the in-memory exporter.</summary>
[Collection(ActivityListenerCollection.Name)]
public sealed class OpenTelemetryExampleTests
{
    [Fact]
    public async Task DocsExample_InAspNetCoreApp_ExportsAttemptSpansAndLodestarSeries()
    {
        // Arrange: the documented registration, with the in-memory exporter in place of OTLP.
        await using var backend = await TestBackend.StartAsync("orders-1");
        var spans = new Exported<Activity>();
        var metrics = new Exported<Metric>();
        await using var app = await StartAppAsync(backend, otel => otel
            .WithMetrics(m => m.AddLodestarInstrumentation().AddInMemoryExporter(metrics))
            .WithTracing(t => t.AddAspNetCoreInstrumentation().AddLodestarInstrumentation().AddInMemoryExporter(spans)));
        using var caller = new HttpClient();

        // Act: an incoming request whose handler calls the service through Lodestar.
        using var response = await caller.GetAsync(app.Urls.First() + "/checkout");

        // Assert
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // The server's span ends after the response has been written, so the caller may read the response first.
        await Eventually.TrueAsync(() => app.Services.GetRequiredService<TracerProvider>().ForceFlush(10_000)
            && spans.Snapshot().Any(s => s.Kind == ActivityKind.Server && s.DisplayName == "GET /checkout"), TimeSpan.FromSeconds(10), "the incoming request's span is exported");
        Assert.True(app.Services.GetRequiredService<MeterProvider>().ForceFlush(10_000));
        var exported = spans.Snapshot();
        var incoming = Assert.Single(exported, s => s.Kind == ActivityKind.Server && s.DisplayName == "GET /checkout");
        var attempt = Assert.Single(exported, s => s.OperationName == "lodestar.attempt" && s.ParentSpanId == incoming.SpanId);
        Assert.Equal("orders", attempt.GetTagItem("lodestar.service"));
        Assert.Equal("127.0.0.1", attempt.GetTagItem("server.address"));
        Assert.Equal(backend.Port, attempt.GetTagItem("server.port"));
        Assert.Equal("GET", attempt.GetTagItem("http.request.method"));
        Assert.Equal(200, attempt.GetTagItem("http.response.status_code"));
        Assert.Contains(metrics.Snapshot(), m => m.Name == "lodestar.client.attempts" && Points(m, backend.Port) > 0);
        Assert.Contains(metrics.Snapshot(), m => m.Name == "lodestar.client.request.duration" && Points(m, null) > 0);
    }

    [Fact]
    public void DocsExample_IsTheRegistrationTheTestRuns()
    {
        // The test above replaces only the exporter; the lines it relies on must be the documented ones.
        var docs = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "observability.md"));

        Assert.Contains(".WithMetrics(m => m.AddLodestarInstrumentation().AddOtlpExporter())", docs, StringComparison.Ordinal);
        Assert.Contains(".WithTracing(t => t.AddAspNetCoreInstrumentation().AddLodestarInstrumentation().AddOtlpExporter());", docs, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TracingWithoutServerSpans_InAspNetCoreApp_ExportsNoAttemptSpan()
    {
        // Arrange: only Lodestar's source. ASP.NET Core still starts an unsampled activity per request for its
        // logging scopes, and the default parent-based sampler drops its children: the pitfall the docs warn about.
        await using var backend = await TestBackend.StartAsync("orders-1");
        var spans = new Exported<Activity>();
        await using var app = await StartAppAsync(backend, otel => otel
            .WithTracing(t => t.AddLodestarInstrumentation().AddInMemoryExporter(spans)));
        using var caller = new HttpClient();

        // Act
        using var response = await caller.GetAsync(app.Urls.First() + "/checkout");

        // Assert
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, backend.Requests);
        Assert.True(app.Services.GetRequiredService<TracerProvider>().ForceFlush(10_000));
        Assert.DoesNotContain(spans.Snapshot(), s => Equals(s.GetTagItem("server.port"), backend.Port));
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Lodestar.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (Lodestar.slnx) was not found above the test's folder.");
    }

    /// <summary>Counts the metric's points, those whose <c>server.port</c> is <paramref name="port"/> when given.</summary>
    private static long Points(Metric metric, int? port)
    {
        long count = 0;
        foreach (ref readonly var point in metric.GetMetricPoints())
        {
            foreach (var tag in point.Tags)
            {
                if (port is null || (tag.Key == "server.port" && Equals(tag.Value, port.Value)))
                {
                    count++;
                    break;
                }
            }
        }

        return count;
    }

    private static async Task<WebApplication> StartAppAsync(TestBackend backend, Action<IOpenTelemetryBuilder> configure)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();

        // An app logs: with any logger enabled, ASP.NET Core starts an activity per request even when no tracer samples it.
        builder.Logging.AddProvider(new CapturingLoggerProvider());
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Configuration["Lodestar:Services:orders:Endpoints:0"] = backend.Address;
        builder.Services.AddHttpClient("orders").AddLodestar();
        configure(builder.Services.AddOpenTelemetry());
        var app = builder.Build();
        app.MapGet("/checkout", async (IHttpClientFactory clients) =>
        {
            using var response = await clients.CreateClient("orders").GetAsync(new Uri("http://orders/x"));
            return Results.StatusCode((int)response.StatusCode);
        });
        await app.StartAsync();
        return app;
    }

    // The exporter appends from the thread that ends each span; a copy (List.CopyTo) does not throw on a concurrent add.
    /// <summary>
    /// What an in-memory exporter exported: its processor adds items from the thread that ends a span or collects the
    /// metrics, so the test reads a copy taken under the same lock, never the live list.
    /// </summary>
    private sealed class Exported<T> : System.Collections.ObjectModel.Collection<T>
    {
        private readonly Lock _gate = new();

        public T[] Snapshot()
        {
            lock (_gate)
            {
                return [.. this];
            }
        }

        protected override void InsertItem(int index, T item)
        {
            lock (_gate)
            {
                base.InsertItem(index, item);
            }
        }
    }
}
