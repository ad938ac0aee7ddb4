using System.Net;
using Lodestar.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lodestar.Cli.Demo;

/// <summary>Serves the demo client's admin page and API (<c>/lodestar</c>) on 127.0.0.1.</summary>
internal sealed class DemoAdminServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private DemoAdminServer(WebApplication app, string url)
    {
        _app = app;
        Url = url;
    }

    /// <summary>Gets the page's URL.</summary>
    public string Url { get; }

    /// <summary>Starts listening with the inspector of the demo's client.</summary>
    public static async Task<DemoAdminServer> StartAsync(int port, ILodestarInspector inspector, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        builder.Services.AddSingleton(inspector);
        var app = builder.Build();
        app.MapLodestarAdmin("/lodestar", o => o.PageRefreshInterval = TimeSpan.FromSeconds(1));
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new DemoAdminServer(app, address.TrimEnd('/') + "/lodestar");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
