using System.Net;
using Lodestar.AspNetCore.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lodestar.Cli.Demo;

/// <summary>Serves the demo client's own metrics at <c>/metrics</c> (Prometheus text format) on 127.0.0.1.</summary>
internal sealed class DemoMetricsServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly PrometheusExporter _exporter;

    private DemoMetricsServer(WebApplication app, PrometheusExporter exporter, string url)
    {
        _app = app;
        _exporter = exporter;
        Url = url;
    }

    public string Url { get; }

    /// <summary>Starts listening; create it before traffic flows, since the exporter aggregates from its creation.</summary>
    public static async Task<DemoMetricsServer> StartAsync(int port, CancellationToken cancellationToken)
    {
        var exporter = new PrometheusExporter();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        app.MapGet("/metrics", async context =>
        {
            context.Response.ContentType = PrometheusExporter.ContentType;
            await exporter.WriteAsync(context.Response.Body, context.RequestAborted);
        });
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new DemoMetricsServer(app, exporter, address.TrimEnd('/') + "/metrics");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _exporter.Dispose();
    }
}
