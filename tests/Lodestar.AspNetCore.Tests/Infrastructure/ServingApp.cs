using System.Diagnostics;
using System.Net;
using Lodestar.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lodestar.AspNetCore.Tests.Infrastructure;

/// <summary>
/// A real Kestrel app on 127.0.0.1 with Lodestar's serving side: health endpoints, /metrics, and a <c>/work</c>
/// endpoint that takes <see cref="WorkDelay"/> and can be held on <see cref="Gate"/>.
/// </summary>
internal sealed class ServingApp : IAsyncDisposable
{
    private int _inFlight;
    private int _served;

    private ServingApp(string name, WebApplication app, CapturingLoggerProvider logs)
    {
        Name = name;
        App = app;
        Logs = logs;
    }

    public string Name { get; }

    public WebApplication App { get; }

    public CapturingLoggerProvider Logs { get; }

    public int Port { get; private set; }

    public string Url => $"http://127.0.0.1:{Port}";

    public string Address => $"127.0.0.1:{Port}";

    public TimeSpan WorkDelay { get; set; }

    public TaskCompletionSource? Gate { get; set; }

    public int InFlight => Volatile.Read(ref _inFlight);

    public int Served => Volatile.Read(ref _served);

    public IServiceProvider Services => App.Services;

    public static async Task<ServingApp> StartAsync(string name = "app", Action<WebApplicationBuilder>? configure = null,
        HttpProtocols protocols = HttpProtocols.Http1AndHttp2, Action<WebApplication>? map = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        var logs = new CapturingLoggerProvider();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(logs);
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = protocols));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(20));
        builder.Services.AddLodestarServing();
        configure?.Invoke(builder);
        var app = builder.Build();
        var serving = new ServingApp(name, app, logs);
        app.MapLodestarHealth();
        app.MapLodestarMetrics();
        app.Map("/work", serving.WorkAsync);
        map?.Invoke(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        serving.Port = new Uri(address).Port;
        return serving;
    }

    /// <summary>Sends one GET on a fresh connection (Connection: close), so it shows whether the listener accepts.</summary>
    public async Task<(HttpStatusCode? Status, string Body)> GetFreshAsync(string path, TimeSpan? timeout = null)
    {
        using var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(2) };
        using var client = new HttpClient(handler) { Timeout = timeout ?? TimeSpan.FromSeconds(10) };
        using var request = new HttpRequestMessage(HttpMethod.Get, Url + path);
        request.Headers.ConnectionClose = true;
        try
        {
            using var response = await client.SendAsync(request);
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }
        catch (HttpRequestException ex)
        {
            return (null, ex.Message);
        }
    }

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        try
        {
            await App.StopAsync(cts.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
        {
            Debug.WriteLine(ex.Message);
        }

        await App.DisposeAsync();
    }

    private async Task WorkAsync(HttpContext context)
    {
        Interlocked.Increment(ref _inFlight);
        try
        {
            if (Gate is { } gate)
            {
                await gate.Task.WaitAsync(context.RequestAborted);
            }

            if (WorkDelay > TimeSpan.Zero)
            {
                await Task.Delay(WorkDelay, context.RequestAborted);
            }

            Interlocked.Increment(ref _served);
            context.Response.Headers["X-Instance"] = Name;
            await context.Response.WriteAsync(Name, context.RequestAborted);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }
}
