using System.Buffers.Binary;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lodestar.Cli.Demo;

/// <summary>One demo backend instance: Kestrel on 127.0.0.1 with an ephemeral port, answering after a small delay.</summary>
internal sealed class DemoBackend : IAsyncDisposable
{
    private readonly WebApplication _app;
    private volatile int _slowFactor = 1;

    private DemoBackend(string name, WebApplication app)
    {
        Name = name;
        _app = app;
    }

    public string Name { get; }

    public string Address { get; private set; } = "";

    public string Url => "http://" + Address;

    public DemoInstanceState State { get; set; } = DemoInstanceState.Serving;

    /// <summary>Gets or sets how many times slower than normal the instance answers.</summary>
    public int SlowFactor
    {
        get => _slowFactor;
        set => _slowFactor = value;
    }

    public static TimeSpan BaseDelay { get; } = TimeSpan.FromMilliseconds(4);

    public static TimeSpan DrainDelay { get; } = TimeSpan.FromMilliseconds(500);

    public static async Task<DemoBackend> StartAsync(string name, bool http2, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = http2 ? HttpProtocols.Http2 : HttpProtocols.Http1));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        // Liveness/readiness probes and a short graceful drain: on stop, readiness turns 503 first and the instance
        // keeps serving for the drain delay, so health-checking clients move away before the listener closes.
        builder.Services.AddLodestarServing(o => o.DrainDelay = DrainDelay);
        var app = builder.Build();
        var backend = new DemoBackend(name, app);
        app.MapLodestarHealth();
        app.MapGet("/work", (Delegate)backend.WorkAsync);
        app.MapPost(DemoGrpc.Path, backend.WorkGrpcAsync);
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        backend.Address = new Uri(address).Authority;
        return backend;
    }

    /// <summary>Stops gracefully: no new connections, in-flight requests finish.</summary>
    public async Task StopAsync()
    {
        State = DemoInstanceState.Stopped;
        await _app.StopAsync();
    }

    /// <summary>Stops without warning: open connections are aborted.</summary>
    public async Task KillAsync()
    {
        State = DemoInstanceState.Killed;
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        try
        {
            await _app.StopAsync(cancelled.Token);
        }
        catch (OperationCanceledException)
        {
            // Expected: a cancelled stop aborts connections instead of draining them.
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (State is DemoInstanceState.Serving or DemoInstanceState.Slow)
        {
            await KillAsync();
        }

        await _app.DisposeAsync();
    }

    private async Task<IResult> WorkAsync(HttpContext context)
    {
        await Task.Delay(BaseDelay * _slowFactor, context.RequestAborted);
        context.Response.Headers["X-Instance"] = Name;
        return Results.Text(Name);
    }

    /// <summary>
    /// The demo's one unary gRPC method, framed by hand (the payload is UTF-8 text, not protobuf): the request is read and
    /// ignored; the reply is this instance's address and how many earlier attempts of the call the client made.
    /// </summary>
    private async Task WorkGrpcAsync(HttpContext context)
    {
        await context.Request.Body.CopyToAsync(Stream.Null, context.RequestAborted);
        await Task.Delay(BaseDelay * _slowFactor, context.RequestAborted);
        var attempts = context.Request.Headers[DemoGrpc.PreviousAttemptsHeader].ToString();
        var payload = Encoding.UTF8.GetBytes(DemoGrpc.FormatReply(Address, attempts.Length == 0 ? 0 : int.Parse(attempts, System.Globalization.CultureInfo.InvariantCulture)));
        var frame = new byte[5 + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)payload.Length);
        payload.CopyTo(frame, 5);
        context.Response.ContentType = "application/grpc";
        context.Response.Headers["X-Instance"] = Name;
        await context.Response.Body.WriteAsync(frame, context.RequestAborted);
        context.Response.AppendTrailer("grpc-status", "0");
    }
}

internal enum DemoInstanceState
{
    Serving,
    Slow,
    Restarting,
    Stopped,
    Killed,
}
