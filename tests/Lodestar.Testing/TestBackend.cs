using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lodestar.Testing;

/// <summary>
/// A real Kestrel backend on 127.0.0.1 with an ephemeral port. Every response carries the instance name in the
/// <c>X-Instance</c> header and body. Delay and status are adjustable while it runs.
/// </summary>
public sealed class TestBackend : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _requests;
    private int _inFlight;

    private TestBackend(string name, WebApplication app, IPAddress bindAddress)
    {
        Name = name;
        _app = app;
        BindAddress = bindAddress;
    }

    /// <summary>Gets the address the backend listens on (127.0.0.1 unless another was given).</summary>
    public IPAddress BindAddress { get; }

    /// <summary>Gets the instance name.</summary>
    public string Name { get; }

    /// <summary>Gets the bound port.</summary>
    public int Port { get; private set; }

    /// <summary>Gets the address as host:port.</summary>
    public string Address => $"{BindAddress}:{Port}";

    /// <summary>Gets the base URI.</summary>
    public string Url => $"http://{BindAddress}:{Port}";

    /// <summary>Gets or sets the delay added to every request.</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>Gets or sets the status returned by every request (default 200).</summary>
    public int Status { get; set; } = 200;

    /// <summary>Gets the number of requests received.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>Gets the number of requests being served.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Gets or sets an optional gate: requests wait on it before answering (null = no gate).</summary>
    public TaskCompletionSource? Gate { get; set; }

    /// <summary>Starts a backend.</summary>
    /// <param name="name">Instance name.</param>
    /// <param name="protocols">HTTP protocols to accept on the cleartext port (HTTP/2 needs prior knowledge).</param>
    /// <param name="port">Port to bind, 0 for ephemeral.</param>
    /// <param name="bindAddress">Loopback address to listen on (for example 127.0.0.2), or <see langword="null"/> for 127.0.0.1.</param>
    public static async Task<TestBackend> StartAsync(string name, HttpProtocols protocols = HttpProtocols.Http1AndHttp2, int port = 0, IPAddress? bindAddress = null)
    {
        bindAddress ??= IPAddress.Loopback;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(bindAddress, port, l => l.Protocols = protocols));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        var app = builder.Build();
        var backend = new TestBackend(name, app, bindAddress);
        app.Run(backend.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        backend.Port = new Uri(address).Port;
        return backend;
    }

    /// <summary>Stops gracefully: stops accepting, lets in-flight requests finish.</summary>
    public Task StopAsync() => _app.StopAsync();

    /// <summary>Stops at once, aborting open connections (a crash as clients see it).</summary>
    public async Task KillAsync()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        try
        {
            await _app.StopAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await KillAsync();
        }
        catch (ObjectDisposedException)
        {
        }

        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext context)
    {
        Interlocked.Increment(ref _requests);
        Interlocked.Increment(ref _inFlight);
        try
        {
            if (Gate is { } gate)
            {
                await gate.Task.WaitAsync(context.RequestAborted);
            }

            if (Delay > TimeSpan.Zero)
            {
                await Task.Delay(Delay, context.RequestAborted);
            }

            context.Response.StatusCode = Status;
            context.Response.Headers["X-Instance"] = Name;
            await context.Response.WriteAsync(Name, context.RequestAborted);
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }
}
